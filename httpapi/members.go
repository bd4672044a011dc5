package httpapi

import (
	"encoding"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
)

// maxJSONDepth is encoding/json's nesting limit. The walk stops there and
// leaves the body to the decoder, which refuses it.
const maxJSONDepth = 10000

// errMalformed stops the walk: the body is not well-formed JSON, and the
// decoder describes that better.
var errMalformed = errors.New("malformed JSON")

// memberError is what the walk finds wrong with a member or a string.
type memberError struct {
	// path leads to the member, innermost segment first.
	path []string
	// what is wrong, followed in the detail by the member's path.
	what string
	// within: the problem is within the member's value (or key), not
	// the member itself.
	within bool
	// suggest, when set, is the field name the member was probably
	// meant as.
	suggest string
}

func (e *memberError) Error() string { return e.what }

// checkMembers walks body, a JSON value to be decoded into a value of type
// t, and refuses (400) what encoding/json would let through silently:
//   - a member name that no field of the target struct has exactly
//     (encoding/json matches names case-insensitively, so {"CODE": …}
//     would fill code);
//   - a member name twice in one object (encoding/json keeps the last);
//   - an escaped lone UTF-16 surrogate such as "\ud800" (decoded as
//     U+FFFD).
//
// It descends into nested objects and arrays along the target's types
// (struct fields by their json names, slice and map elements); below a
// value the target takes whole (json.RawMessage, any, a type with its own
// UnmarshalJSON) it still refuses duplicates and lone surrogates. Malformed
// JSON stops the walk without a problem: the decoder reports it.
func checkMembers(body []byte, t reflect.Type) *Problem {
	w := walker{b: body, fields: map[reflect.Type]map[string]reflect.Type{}}
	err := w.value(t, 0)
	var me *memberError
	if !errors.As(err, &me) {
		return nil
	}
	var path strings.Builder
	for i := len(me.path) - 1; i >= 0; i-- {
		seg := me.path[i]
		if path.Len() > 0 && !strings.HasPrefix(seg, "[") {
			path.WriteByte('.')
		}
		path.WriteString(seg)
	}
	var p *Problem
	switch {
	case !me.within:
		p = problem(http.StatusBadRequest, "%s %s", me.what, quoted(path.String()))
	case path.Len() > 0:
		p = problem(http.StatusBadRequest, "%s in member %s", me.what, quoted(path.String()))
	default:
		p = problem(http.StatusBadRequest, "%s in the request body", me.what)
	}
	if me.suggest != "" {
		p.Detail += " (member names are case-sensitive: did you mean " + strconv.Quote(me.suggest) + "?)"
	}
	p.Field = clip(path.String())
	return p
}

// walker is one walk over a body.
type walker struct {
	b []byte
	i int
	// fields caches the json names of the struct types met in this walk.
	fields map[reflect.Type]map[string]reflect.Type
}

// target returns the type whose members a JSON value is checked against:
// t without pointers, or nil when anything goes (no target, an interface,
// a type that decodes itself).
func target(t reflect.Type) reflect.Type {
	jsonUnmarshaler := reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler := reflect.TypeFor[encoding.TextUnmarshaler]()
	for t != nil {
		if t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) {
			return nil
		}
		if t.Kind() != reflect.Pointer {
			break
		}
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	if pt := reflect.PointerTo(t); pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
		return nil
	}
	return t
}

func (w *walker) space() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// value walks one JSON value meant for type t.
func (w *walker) value(t reflect.Type, depth int) error {
	if depth > maxJSONDepth {
		return errMalformed
	}
	w.space()
	if w.i >= len(w.b) {
		return errMalformed
	}
	switch w.b[w.i] {
	case '{':
		return w.object(target(t), depth+1)
	case '[':
		var elem reflect.Type
		if t := target(t); t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		return w.array(elem, depth+1)
	case '"':
		_, _, err := w.str()
		return err
	}
	// A number, true, false or null: the decoder checks its form.
	start := w.i
	for w.i < len(w.b) && !isDelimiter(w.b[w.i]) {
		w.i++
	}
	if w.i == start {
		return errMalformed
	}
	return nil
}

// isDelimiter reports whether c ends a number or literal.
func isDelimiter(c byte) bool {
	switch c {
	case ',', ']', '}', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// object walks an object whose members are meant for t (a struct or map
// type, else nil).
func (w *walker) object(t reflect.Type, depth int) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = w.structFields(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	w.i++ // {
	w.space()
	if w.i < len(w.b) && w.b[w.i] == '}' {
		w.i++
		return nil
	}
	// Few objects have many members: a slice is cheaper than a map
	// until it grows.
	var seen []string
	var seenSet map[string]struct{}
	for {
		w.space()
		if w.i >= len(w.b) || w.b[w.i] != '"' {
			return errMalformed
		}
		raw, escaped, err := w.str()
		if err != nil {
			return err
		}
		name := string(raw)
		if escaped {
			if json.Unmarshal(w.b[w.i-len(raw)-2:w.i], &name) != nil {
				return errMalformed
			}
		}
		if dup(name, &seen, &seenSet) {
			return &memberError{path: []string{name}, what: "duplicate member"}
		}
		ft := elem
		if fields != nil {
			var ok bool
			if ft, ok = fields[name]; !ok {
				e := &memberError{path: []string{name}, what: "unknown field"}
				for f := range fields {
					if strings.EqualFold(f, name) && (e.suggest == "" || f < e.suggest) {
						e.suggest = f
					}
				}
				return e
			}
		}
		w.space()
		if w.i >= len(w.b) || w.b[w.i] != ':' {
			return errMalformed
		}
		w.i++
		if err := w.value(ft, depth); err != nil {
			var me *memberError
			if errors.As(err, &me) {
				me.path = append(me.path, name)
			}
			return err
		}
		w.space()
		if w.i >= len(w.b) {
			return errMalformed
		}
		switch w.b[w.i] {
		case ',':
			w.i++
		case '}':
			w.i++
			return nil
		default:
			return errMalformed
		}
	}
}

// dup reports whether name was seen in this object, and records it.
func dup(name string, seen *[]string, set *map[string]struct{}) bool {
	if *set != nil {
		if _, ok := (*set)[name]; ok {
			return true
		}
		(*set)[name] = struct{}{}
		return false
	}
	for _, s := range *seen {
		if s == name {
			return true
		}
	}
	*seen = append(*seen, name)
	if len(*seen) > 16 {
		*set = make(map[string]struct{}, 2*len(*seen))
		for _, s := range *seen {
			(*set)[s] = struct{}{}
		}
	}
	return false
}

// array walks an array whose elements are meant for elem.
func (w *walker) array(elem reflect.Type, depth int) error {
	w.i++ // [
	w.space()
	if w.i < len(w.b) && w.b[w.i] == ']' {
		w.i++
		return nil
	}
	for n := 0; ; n++ {
		if err := w.value(elem, depth); err != nil {
			var me *memberError
			if errors.As(err, &me) {
				me.path = append(me.path, "["+strconv.Itoa(n)+"]")
			}
			return err
		}
		w.space()
		if w.i >= len(w.b) {
			return errMalformed
		}
		switch w.b[w.i] {
		case ',':
			w.i++
		case ']':
			w.i++
			return nil
		default:
			return errMalformed
		}
	}
}

// str walks a string and returns its raw content (between the quotes) and
// whether it has escapes. A \u escape of half a surrogate pair without its
// other half is refused.
func (w *walker) str() (raw []byte, escaped bool, err error) {
	w.i++ // "
	start := w.i
	for w.i < len(w.b) {
		c := w.b[w.i]
		switch {
		case c == '"':
			raw = w.b[start:w.i]
			w.i++
			return raw, escaped, nil
		case c < 0x20:
			return nil, false, errMalformed
		case c != '\\':
			w.i++
			continue
		}
		escaped = true
		if w.i+1 >= len(w.b) {
			return nil, false, errMalformed
		}
		if w.b[w.i+1] != 'u' {
			w.i += 2
			continue
		}
		r, ok := w.hex4(w.i + 2)
		if !ok {
			return nil, false, errMalformed
		}
		w.i += 6
		switch {
		case utf16.IsSurrogate(r) && r < 0xDC00:
			// A high half must be followed by a low half.
			if low, ok := w.hex4(w.i + 2); ok && w.i+1 < len(w.b) && w.b[w.i] == '\\' && w.b[w.i+1] == 'u' && low >= 0xDC00 && low <= 0xDFFF {
				w.i += 6
				continue
			}
			return nil, false, loneSurrogate(r)
		case utf16.IsSurrogate(r):
			return nil, false, loneSurrogate(r)
		}
	}
	return nil, false, errMalformed
}

func loneSurrogate(r rune) error {
	return &memberError{what: "malformed JSON string: the escape \\u" + strconv.FormatInt(int64(r), 16) + " is half of a UTF-16 surrogate pair without its other half", within: true}
}

// hex4 decodes the four hex digits at b[at:].
func (w *walker) hex4(at int) (rune, bool) {
	if at+4 > len(w.b) {
		return 0, false
	}
	var r rune
	for _, c := range w.b[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// structFields returns the json member names of struct type t and the
// types they decode into, as encoding/json sees them: exported fields,
// named by their tag or else their Go name, "-" skipped, the fields of
// embedded structs promoted (an outer name wins).
func (w *walker) structFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := w.fields[t]; ok {
		return m
	}
	m := map[string]reflect.Type{}
	// Breadth first, so that shallower fields win as in encoding/json.
	level := []reflect.Type{t}
	visited := map[reflect.Type]bool{t: true}
	for len(level) > 0 {
		var next []reflect.Type
		found := map[string]reflect.Type{}
		for _, st := range level {
			for i := range st.NumField() {
				f := st.Field(i)
				tag := f.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				if f.Anonymous && name == "" {
					ft := f.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if ft.Kind() == reflect.Struct {
						if !visited[ft] {
							visited[ft] = true
							next = append(next, ft)
						}
						continue
					}
				}
				if !f.IsExported() {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if _, ok := m[name]; !ok {
					found[name] = f.Type
				}
			}
		}
		for k, v := range found {
			m[k] = v
		}
		level = next
	}
	w.fields[t] = m
	return m
}
