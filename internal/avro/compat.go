package avro

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	ta "github.com/twmb/avro"
)

// IncompatibleError says why records written with a registered version of
// a schema could not be read with the current one. It wraps
// ErrIncompatible.
type IncompatibleError struct {
	// Type is the record's full name, such as "catalog.author.AuthorCreated".
	Type string
	// Field is the dotted path of the offending field ("" for the record
	// itself), such as "chapters.title".
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
// registered schema of the same record (by full name, or an alias of the
// current schema): the current schema must read all records written with
// any of them (backward compatibility, checked transitively against every
// version kept in the registry). Refused: a field added without a default, a
// type changed other than by Avro's promotions (int to long, float or
// double; long to float or double; float to double; string to and from
// bytes), so any narrowing; a logical type added, removed or changed; a
// union branch removed; a record, enum or fixed renamed without an alias; an
// enum symbol removed without an enum default; a fixed size changed. The
// error (an *IncompatibleError per registered version, joined) names the
// type and the field. Schemas of other records are ignored.
func CheckCompatible(registered []*Schema, current *Schema) error {
	var errs []error
	for _, r := range registered {
		// The same fingerprint does not make the same schema: the
		// canonical form leaves out defaults, aliases and logical types.
		if r.JSON() == current.JSON() {
			continue
		}
		if r.Name() != current.Name() && !slices.Contains(fullAliases(current.node, ""), r.Name()) {
			continue
		}
		if err := checkOne(r, current); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkOne checks that reader can read what writer wrote. Our own walk
// names the problem in the words of the change made; the library's check
// is the arbiter for anything the walk does not recognise.
func checkOne(writer, reader *Schema) error {
	inc := func(field, problem string) error {
		return &IncompatibleError{Type: reader.Name(), Field: field, Writer: writer.Fingerprint(), Reader: reader.Fingerprint(), Problem: problem}
	}
	w := writer.node.ExpandReferences()
	r := reader.node.ExpandReferences()
	if field, problem, bad := walkCompat(w, r, "", "", "", 0); bad {
		return inc(field, problem)
	}
	if err := ta.CheckCompatibility(writer.s, reader.s); err != nil {
		var ce *ta.CompatibilityError
		if errors.As(err, &ce) {
			path := strings.TrimPrefix(ce.Path, ".")
			if path == "<root>" {
				path = ""
			}
			return inc(path, fmt.Sprintf("%s (reader %s, writer %s)", ce.Detail, ce.ReaderType, ce.WriterType))
		}
		return inc("", err.Error())
	}
	return nil
}

const maxWalkDepth = 64

// walkCompat looks for the first reason why r cannot read what w wrote.
// wns and rns are the enclosing namespaces.
func walkCompat(w, r *ta.SchemaNode, path, wns, rns string, depth int) (field, problem string, bad bool) {
	if depth > maxWalkDepth {
		return "", "", false // leave deep (recursive) schemas to the library
	}
	if w.Type == "union" {
		if r.Type == "union" {
			for _, wb := range w.Branches {
				rb := matchBranch(&wb, r.Branches, wns, rns)
				if rb == nil {
					return path, fmt.Sprintf("union branch %s removed", describe(&wb, wns)), true
				}
				if f, p, b := walkCompat(&wb, rb, path, wns, rns, depth+1); b {
					return f, p, b
				}
			}
			return "", "", false
		}
		for _, wb := range w.Branches {
			if !branchMatches(&wb, r, wns, rns) {
				return path, fmt.Sprintf("union branch %s removed (the union %s became %s)", describe(&wb, wns), describe(w, wns), describe(r, rns)), true
			}
			if f, p, b := walkCompat(&wb, r, path, wns, rns, depth+1); b {
				return f, p, b
			}
		}
		return "", "", false
	}
	if r.Type == "union" {
		rb := matchBranch(w, r.Branches, wns, rns)
		if rb == nil {
			return path, fmt.Sprintf("type changed from %s to the union %s, which has no branch for it", describe(w, wns), describe(r, rns)), true
		}
		return walkCompat(w, rb, path, wns, rns, depth+1)
	}
	if w.Type != r.Type {
		if promotable(w.Type, r.Type) {
			if w.LogicalType != "" || r.LogicalType != "" {
				return path, fmt.Sprintf("type changed from %s to %s", describe(w, wns), describe(r, rns)), true
			}
			return "", "", false
		}
		verb := "changed"
		if narrowing(w.Type, r.Type) {
			verb = "narrowed"
		}
		return path, fmt.Sprintf("type %s from %s to %s", verb, describe(w, wns), describe(r, rns)), true
	}
	if w.LogicalType != r.LogicalType {
		return path, fmt.Sprintf("logical type changed from %s to %s", logicalName(w.LogicalType), logicalName(r.LogicalType)), true
	}
	if w.LogicalType == "decimal" && (w.Precision != r.Precision || w.Scale != r.Scale) {
		return path, fmt.Sprintf("decimal changed from (%d,%d) to (%d,%d)", w.Precision, w.Scale, r.Precision, r.Scale), true
	}
	switch r.Type {
	case "record":
		wn, rn := fullName(w, wns), fullName(r, rns)
		if wn != rn && !slices.Contains(fullAliases(r, rns), wn) {
			return path, fmt.Sprintf("record %s renamed to %s without an alias", wn, rn), true
		}
		wns, rns = namespaceOf(wn), namespaceOf(rn)
		for i := range r.Fields {
			rf := &r.Fields[i]
			wf := findField(w.Fields, rf)
			fp := joinPath(path, rf.Name)
			if wf == nil {
				if !rf.HasDefault {
					return fp, "field added without a default (records written before it have no value for it)", true
				}
				continue
			}
			if f, p, b := walkCompat(&wf.Type, &rf.Type, fp, wns, rns, depth+1); b {
				return f, p, b
			}
		}
	case "enum":
		wn, rn := fullName(w, wns), fullName(r, rns)
		if wn != rn && !slices.Contains(fullAliases(r, rns), wn) {
			return path, fmt.Sprintf("enum %s renamed to %s without an alias", wn, rn), true
		}
		if !r.HasEnumDefault {
			for _, s := range w.Symbols {
				if !slices.Contains(r.Symbols, s) {
					return path, fmt.Sprintf("enum symbol %s removed without an enum default", s), true
				}
			}
		}
	case "fixed":
		wn, rn := fullName(w, wns), fullName(r, rns)
		if wn != rn && !slices.Contains(fullAliases(r, rns), wn) {
			return path, fmt.Sprintf("fixed %s renamed to %s without an alias", wn, rn), true
		}
		if w.Size != r.Size {
			return path, fmt.Sprintf("fixed size changed from %d to %d", w.Size, r.Size), true
		}
	case "array":
		if w.Items != nil && r.Items != nil {
			return walkCompat(w.Items, r.Items, path+"[]", wns, rns, depth+1)
		}
	case "map":
		if w.Values != nil && r.Values != nil {
			return walkCompat(w.Values, r.Values, path+"{}", wns, rns, depth+1)
		}
	}
	return "", "", false
}

// findField finds the writer field a reader field reads: same name, or one
// of the reader field's aliases.
func findField(fields []ta.SchemaField, rf *ta.SchemaField) *ta.SchemaField {
	for i := range fields {
		if fields[i].Name == rf.Name {
			return &fields[i]
		}
	}
	for i := range fields {
		if slices.Contains(rf.Aliases, fields[i].Name) {
			return &fields[i]
		}
	}
	return nil
}

// matchBranch returns the reader branch that reads writer type w: the same
// type (named types by name or alias), else the first one w promotes to.
func matchBranch(w *ta.SchemaNode, branches []ta.SchemaNode, wns, rns string) *ta.SchemaNode {
	for i := range branches {
		if sameKind(w, &branches[i], wns, rns) {
			return &branches[i]
		}
	}
	for i := range branches {
		if promotable(w.Type, branches[i].Type) {
			return &branches[i]
		}
	}
	return nil
}

func branchMatches(w, r *ta.SchemaNode, wns, rns string) bool {
	return sameKind(w, r, wns, rns) || promotable(w.Type, r.Type)
}

func sameKind(w, r *ta.SchemaNode, wns, rns string) bool {
	if w.Type != r.Type {
		return false
	}
	switch w.Type {
	case "record", "enum", "fixed":
		wn, rn := fullName(w, wns), fullName(r, rns)
		return wn == rn || slices.Contains(fullAliases(r, rns), wn)
	}
	return true
}

// promotable reports Avro's promotions of a writer type to a reader type.
func promotable(w, r string) bool {
	switch w {
	case "int":
		return r == "long" || r == "float" || r == "double"
	case "long":
		return r == "float" || r == "double"
	case "float":
		return r == "double"
	case "string":
		return r == "bytes"
	case "bytes":
		return r == "string"
	}
	return false
}

func narrowing(w, r string) bool {
	rank := map[string]int{"int": 1, "long": 2, "float": 3, "double": 4}
	return rank[w] > 0 && rank[r] > 0 && rank[r] < rank[w]
}

func describe(n *ta.SchemaNode, ns string) string {
	switch n.Type {
	case "record", "enum", "fixed":
		return n.Type + " " + fullName(n, ns)
	case "union":
		parts := make([]string, len(n.Branches))
		for i := range n.Branches {
			parts[i] = describe(&n.Branches[i], ns)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case "array":
		if n.Items != nil {
			return "array of " + describe(n.Items, ns)
		}
	case "map":
		if n.Values != nil {
			return "map of " + describe(n.Values, ns)
		}
	}
	if n.LogicalType != "" {
		return n.Type + " (" + n.LogicalType + ")"
	}
	return n.Type
}

func logicalName(l string) string {
	if l == "" {
		return "none"
	}
	return l
}

func fullName(n *ta.SchemaNode, ns string) string {
	if strings.Contains(n.Name, ".") {
		return n.Name
	}
	if n.Namespace != "" {
		ns = n.Namespace
	}
	if ns == "" {
		return n.Name
	}
	return ns + "." + n.Name
}

func fullAliases(n *ta.SchemaNode, ns string) []string {
	out := make([]string, 0, len(n.Aliases))
	own := namespaceOf(fullName(n, ns))
	for _, a := range n.Aliases {
		if !strings.Contains(a, ".") && own != "" {
			a = own + "." + a
		}
		out = append(out, a)
	}
	return out
}

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}
