package avro

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	ta "github.com/twmb/avro"
)

// IncompatibleError says why records written with a registered version of
// a schema could not be read with the current one. It wraps
// ErrIncompatible.
type IncompatibleError struct {
	// Type is the record's full name, such as "bank.account.Deposited".
	Type string
	// Field is the dotted path of the offending field ("" for the record
	// itself), such as "chapters[].title".
	Field string
	// Writer and Reader are the fingerprints of the registered (older)
	// and the current schema.
	Writer, Reader uint64
	// Problem says what changed, such as "field added without a default".
	Problem string
}

// Error implements error. It ends with the way out when the registered
// schema is the mistake (a bad deploy registered it, and rolling back now
// refuses to start): one command, with the fingerprint to give it, so that
// the operator reading a refused start-up need not look for either.
func (e *IncompatibleError) Error() string {
	at := "the record itself"
	if e.Field != "" {
		at = "field " + e.Field
	}
	w := FormatFingerprint(e.Writer)
	return fmt.Sprintf("incompatible change to %s at %s: %s (records written with registered schema %s could not be read by schema %s); "+
		"if registered schema %s is wrong, remove it with `catalog schemas delete %s` (records written with it then become unreadable)",
		e.Type, at, e.Problem, w, FormatFingerprint(e.Reader), w, w)
}

// Unwrap makes errors.Is(err, ErrIncompatible) hold.
func (e *IncompatibleError) Unwrap() error { return ErrIncompatible }

// CheckCompatible checks the current schema of a type against every
// registered schema of the same record (by full name): the current schema
// must read all records written with any of them (backward compatibility,
// checked transitively against every version kept in the registry). The
// rules are Avro's schema resolution, as github.com/twmb/avro's
// CheckCompatibility applies them, and one more: a logical type may not be
// added, removed or changed. The error (an *IncompatibleError per
// registered version, joined) names the type and the field. Schemas of
// other records are ignored.
func CheckCompatible(registered []*Schema, current *Schema) error {
	var errs []error
	for _, r := range registered {
		// The same fingerprint does not make the same schema: the
		// canonical form leaves out defaults, aliases and logical types.
		if r.Name() == current.Name() && r.JSON() != current.JSON() {
			errs = append(errs, checkOne(r, current))
		}
	}
	return errors.Join(errs...)
}

// checkOne checks that reader can read what writer wrote.
func checkOne(writer, reader *Schema) error {
	inc := func(field, problem string) error {
		return &IncompatibleError{Type: reader.Name(), Field: field, Writer: writer.Fingerprint(), Reader: reader.Fingerprint(), Problem: problem}
	}
	w, r := writer.node.ExpandReferences(), reader.node.ExpandReferences()
	if err := ta.CheckCompatibility(writer.s, reader.s); err != nil {
		var ce *ta.CompatibilityError
		if !errors.As(err, &ce) {
			return inc("", err.Error())
		}
		field, wn := follow(w, r, ce.Path)
		return inc(field, problem(ce, wn))
	}
	if field, from, to, bad := logicalChange(w, r, "", 0); bad {
		return inc(field, fmt.Sprintf("logical type changed from %s to %s", cmp.Or(from, "none"), cmp.Or(to, "none")))
	}
	return nil
}

// problem says in the words of the change made what the library's error
// says in the words of its check. The details are the library's text, not
// constants it exports; TestCheckCompatible has a case for each, so an
// upgrade that rewords one fails there. A detail not known here is
// repeated as it is.
func problem(ce *ta.CompatibilityError, writerNode *ta.SchemaNode) string {
	w, r := ce.WriterType, ce.ReaderType
	switch ce.Detail {
	case "reader field has no default and is missing from writer":
		return "field added without a default (records written before it have no value for it)"
	case "incompatible types":
		if writerNode != nil && writerNode.Type == "union" {
			return fmt.Sprintf("union branch %s removed (the union became %s)", w, r)
		}
		if rank := map[string]int{"int": 1, "long": 2, "float": 3, "double": 4}; rank[r] > 0 && rank[r] < rank[w] {
			return fmt.Sprintf("type narrowed from %s to %s", w, r)
		}
		return fmt.Sprintf("type changed from %s to %s", w, r)
	case "writer union branch has no matching reader branch":
		_, branch, _ := strings.Cut(w, ":") // "union[2]:long"
		return fmt.Sprintf("union branch %s removed", branch)
	case "writer type matches no reader union branch":
		return fmt.Sprintf("type changed from %s to a union with no branch for it", w)
	case "record names do not match", "enum names do not match", "fixed names do not match":
		kind, _, _ := strings.Cut(ce.Detail, " ")
		return fmt.Sprintf("%s %s renamed to %s without an alias", kind, w, r)
	case "fixed sizes differ":
		return fmt.Sprintf("fixed size changed from %s to %s", w, r)
	}
	if rest, ok := strings.CutPrefix(ce.Detail, "writer enum symbol "); ok {
		if q, err := strconv.QuotedPrefix(rest); err == nil {
			sym, _ := strconv.Unquote(q)
			return fmt.Sprintf("enum symbol %s removed without an enum default", sym)
		}
	}
	return fmt.Sprintf("%s (reader %s, writer %s)", ce.Detail, r, w)
}

// follow walks the library's path of an incompatibility (reader field
// names, "items" and "values"; unions are not marked) down both schemas,
// and returns it as our messages write it ("chapters[].title"), with the
// writer's node there.
func follow(w, r *ta.SchemaNode, libPath string) (string, *ta.SchemaNode) {
	path := ""
	if libPath == "(root)" {
		return path, w
	}
	for seg := range strings.SplitSeq(libPath, ".") {
		rc, rf := child(r, seg)
		switch {
		case rc == nil: // not a path through r; cannot happen
			return libPath, nil
		case rf != nil:
			path, w = joinPath(path, seg), writerField(w, rf)
		case seg == "items":
			path += "[]"
			w, _ = child(w, seg)
		default:
			path += "{}"
			w, _ = child(w, seg)
		}
		r = rc
	}
	return path, w
}

// child returns the node under n that a path segment names (a record's
// field, an array's "items", a map's "values"; in a union, the first
// branch that has it), and the field when it is one.
func child(n *ta.SchemaNode, seg string) (*ta.SchemaNode, *ta.SchemaField) {
	if n == nil {
		return nil, nil
	}
	switch n.Type {
	case "union":
		for i := range n.Branches {
			if c, f := child(&n.Branches[i], seg); c != nil {
				return c, f
			}
		}
	case "array":
		if seg == "items" {
			return n.Items, nil
		}
	case "map":
		if seg == "values" {
			return n.Values, nil
		}
	case "record":
		for i := range n.Fields {
			if n.Fields[i].Name == seg {
				return &n.Fields[i].Type, &n.Fields[i]
			}
		}
	}
	return nil, nil
}

// writerField returns the type of the writer's field that the reader's
// field rf reads: the field of its name, else of one of its aliases.
func writerField(w *ta.SchemaNode, rf *ta.SchemaField) *ta.SchemaNode {
	for _, name := range append([]string{rf.Name}, rf.Aliases...) {
		if c, f := child(w, name); f != nil {
			return c
		}
	}
	return nil
}

// logicalChange finds where the reader's logical type differs from the
// writer's, which the library's check leaves alone (the canonical form has
// none: a timestamp-millis long read as timestamp-micros is a valid long,
// and a date off by a factor of 1,000). It runs once that check passed.
func logicalChange(w, r *ta.SchemaNode, path string, depth int) (field, from, to string, bad bool) {
	switch {
	case w == nil || r == nil || depth > 64: // the depth only guards; a recursive record ends in a reference
		return "", "", "", false
	case w.Type == "union":
		for i := range w.Branches {
			if field, from, to, bad = logicalChange(&w.Branches[i], r, path, depth+1); bad {
				return field, from, to, bad
			}
		}
		return "", "", "", false
	case r.Type == "union":
		i := slices.IndexFunc(r.Branches, func(b ta.SchemaNode) bool { return b.Type == w.Type && shortName(b.Name) == shortName(w.Name) })
		if i < 0 {
			return "", "", "", false // a promotion: the library checked it
		}
		return logicalChange(w, &r.Branches[i], path, depth+1)
	case w.LogicalType != r.LogicalType:
		return path, w.LogicalType, r.LogicalType, true
	}
	switch r.Type {
	case "record":
		for i := range r.Fields {
			if field, from, to, bad = logicalChange(writerField(w, &r.Fields[i]), &r.Fields[i].Type, joinPath(path, r.Fields[i].Name), depth+1); bad {
				return field, from, to, bad
			}
		}
	case "array":
		return logicalChange(w.Items, r.Items, path+"[]", depth+1)
	case "map":
		return logicalChange(w.Values, r.Values, path+"{}", depth+1)
	}
	return "", "", "", false
}

func shortName(name string) string { return name[strings.LastIndexByte(name, '.')+1:] }

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}
