// Package httpapi serves event-sourced aggregates over HTTP: one generic
// Resource per aggregate, built from its es.Aggregate and registered with
// Config.Handle, gives JSON reads (one item, pages in key order, history
// and past states), the write endpoints it declares (Write), and CQRS
// command endpoints; a View serves a read model keyed by anything else (a
// customer's balance); the API adds probes, operator endpoints, access
// control, a Host check and forwarding between instances. Writes become
// commands sent through the event-sourcing runtime and answered with their
// outcome; reads come from the local stores, or from the instance that
// owns the key. Errors are RFC 9457 problem details. The package knows no
// aggregate: the catalog's resources are in package catalogapi.
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bookscatalog/catalog/es"
)

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field names the offending input field, when there is one.
	Field string `json:"field,omitempty"`
	// Code is the rejection code of a refused command.
	Code string `json:"code,omitempty"`
	// MsgID is the command's id, so that its outcome can be looked up.
	MsgID string `json:"msgId,omitempty"`
}

// Error implements error with the problem's detail.
func (p *Problem) Error() string { return p.Detail }

// NewProblem returns a problem of status with a detail formatted from
// format and args. A detail that repeats request input formats it with
// Quote.
func NewProblem(status int, format string, args ...any) *Problem {
	return problem(status, format, args...)
}

// Rejected returns the problem of a refused command or field, such as a
// validation error of the domain: its status follows the rejection's code
// (see es.AsRejection), and its field is the rejection's. err must not be
// nil.
func Rejected(err error) *Problem { return rejectionProblem(es.AsRejection(err), "") }

// Quote returns s quoted for a problem's detail, cut short when long, so
// that a problem never mirrors large or hostile input back.
func Quote(s string) string { return quoted(s) }

// Required returns a 422 naming the first missing member of name/value
// pairs ("title", body.Title, ...), where a value is a *string that is nil
// when the member was absent; nil when none is missing.
func Required(pairs ...any) *Problem {
	for i := 0; i+1 < len(pairs); i += 2 {
		if v, ok := pairs[i+1].(*string); ok && v == nil {
			p := problem(http.StatusUnprocessableEntity, "field %q is required", pairs[i])
			p.Field = pairs[i].(string)
			return p
		}
	}
	return nil
}

func problem(status int, format string, args ...any) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: fmt.Sprintf(format, args...)}
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// maxEcho bounds how many bytes of a request's input a problem repeats: a
// problem names what is wrong, it does not mirror a megabyte back (nor
// carry a hostile string whole into logs and pages).
const maxEcho = 64

// clip returns s cut to maxEcho bytes at a rune boundary, with "…" when
// cut.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	return s[:cutAt(s)] + "…"
}

// quoted returns s quoted with %q for a problem detail, cut to maxEcho
// bytes at a rune boundary, with "…" after the closing quote when cut.
// Every detail that repeats request input (headers, query and path values,
// body members, command types) formats it with quoted.
func quoted(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:cutAt(s)]) + "…"
}

// cutAt returns where to cut s (longer than maxEcho) so that no rune is
// split; it backs up at most utf8.UTFMax-1 bytes, so invalid UTF-8 is
// still cut near maxEcho.
func cutAt(s string) int {
	cut := maxEcho
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return cut
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("write response", "err", err)
	}
}

// MaxBodyBytes bounds request bodies.
const MaxBodyBytes = 1 << 20

// decodeBody strictly decodes a JSON object body into v: content type
// application/json, at most MaxBodyBytes, then decodeStrict.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) *Problem {
	if p := checkContentType(r); p != nil {
		return p
	}
	if p := checkContentEncoding(w, r); p != nil {
		return p
	}
	body, p := readBody(w, r)
	if p != nil {
		return p
	}
	return decodeStrict(body, v)
}

// bodyPrealloc bounds the buffer readBody allocates for a body before any
// of it has arrived.
const bodyPrealloc = 64 << 10

// readBody reads the whole request body, at most MaxBodyBytes. The body is
// read before it is decoded so that it can be checked as a whole (UTF-8,
// member names) in one pass before encoding/json sees it.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *Problem) {
	if r.ContentLength > MaxBodyBytes {
		// Refused before a byte is read: the client said how much.
		return nil, tooLarge()
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		// Room for the whole body and the read that finds its end,
		// so that the buffer is allocated once; but no more than
		// bodyPrealloc ahead of what arrives, for the length is only
		// the client's word: headers alone announcing MaxBodyBytes
		// would hold that much until the ReadTimeout.
		buf.Grow(int(min(r.ContentLength, bodyPrealloc)) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, problem(http.StatusBadRequest, "the request body could not be read: %v", err)
	}
	return buf.Bytes(), nil
}

func tooLarge() *Problem {
	return problem(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", MaxBodyBytes)
}

// decodeStrict decodes body, one JSON object, into v, refusing what
// encoding/json would let through silently: invalid UTF-8 (it would become
// U+FFFD), member names that match a field only case-insensitively,
// duplicate members (the last would win) and unknown members. Nothing may
// follow the object.
func decodeStrict(body []byte, v any) *Problem {
	if at := invalidUTF8(body); at >= 0 {
		return problem(http.StatusBadRequest, "request body is not valid UTF-8: invalid byte at offset %d", at)
	}
	if p := checkMembers(body, reflect.TypeOf(v)); p != nil {
		return p
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem(http.StatusBadRequest, "malformed JSON: unexpected data after the object")
	}
	return nil
}

// invalidUTF8 returns the offset of the first byte of b that is not part
// of valid UTF-8, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

func checkContentType(r *http.Request) *Problem {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return problem(http.StatusUnsupportedMediaType, "Content-Type must be application/json, not %s", quoted(ct))
	}
	return nil
}

// checkContentEncoding refuses (415, RFC 9110 §15.5.16) a body in a
// content coding: the API does not decode one, and read as it is a gzip
// body would be "not valid UTF-8", and a body labelled with a coding it is
// not in would be taken.
func checkContentEncoding(w http.ResponseWriter, r *http.Request) *Problem {
	for _, v := range r.Header.Values("Content-Encoding") {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				w.Header().Set("Accept-Encoding", "identity")
				p := problem(http.StatusUnsupportedMediaType, "Content-Encoding %s is not supported: send the body uncompressed, without Content-Encoding", quoted(c))
				p.Field = "Content-Encoding"
				return p
			}
		}
	}
	return nil
}

func jsonProblem(err error) *Problem {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return tooLarge()
	case errors.As(err, &se):
		return problem(http.StatusBadRequest, "malformed JSON at byte %d: %v", se.Offset, err)
	case errors.As(err, &ute) && ute.Field == "":
		// The body itself has the wrong type (an array, a string...).
		return problem(http.StatusBadRequest, "request body must be a JSON object, not %s", clip(ute.Value))
	case errors.As(err, &ute):
		// Value can be "number <the literal>": clipped like any input.
		p := problem(http.StatusUnprocessableEntity, "field %s must be %s, not %s", quoted(ute.Field), jsonKind(ute.Type.String()), clip(ute.Value))
		p.Field = clip(ute.Field)
		return p
	case errors.Is(err, io.EOF):
		return problem(http.StatusBadRequest, "request body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem(http.StatusBadRequest, "malformed JSON: unexpected end of the body")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// checkMembers finds unknown members first; this is a backstop.
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p := problem(http.StatusBadRequest, "unknown field %s", quoted(field))
		p.Field = clip(field)
		return p
	}
	return problem(http.StatusBadRequest, "malformed JSON: %s", clip(err.Error()))
}

func jsonKind(goType string) string {
	switch {
	case goType == "string", goType == "*string":
		return "a string"
	case strings.Contains(goType, "int"):
		return "an integer"
	}
	return "a " + goType
}
