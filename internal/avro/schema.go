package avro

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	ta "github.com/twmb/avro"
)

// Schema is one Avro schema: its full JSON (what the registry stores), its
// full name (for a record: namespace + "." + name) and its fingerprint, the
// CRC-64-AVRO (Rabin) hash of its Parsing Canonical Form.
type Schema struct {
	json     string
	name     string
	fp       uint64
	s        *ta.Schema
	node     *ta.SchemaNode
	register atomic.Bool // set once a registry holds it (see Register)
}

// ParseSchema parses a schema's JSON, as stored in the registry.
func ParseSchema(schemaJSON string) (*Schema, error) {
	s, err := ta.Parse(schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("avro: parse schema: %w", err)
	}
	return newSchema(schemaJSON, s), nil
}

func newSchema(schemaJSON string, s *ta.Schema) *Schema {
	root := s.Root()
	name := root.Name
	if root.Namespace != "" && !strings.Contains(name, ".") {
		name = root.Namespace + "." + name
	}
	if name == "" {
		name = root.Type // a primitive, array, map or union
	}
	return &Schema{json: schemaJSON, name: name, fp: Fingerprint(s.Canonical()), s: s, node: root}
}

// JSON returns the schema's full JSON, with defaults and aliases: the value
// of its registry record.
func (s *Schema) JSON() string { return s.json }

// Name returns the schema's full name, such as
// "catalog.author.AuthorCreated"; for an unnamed schema, its type.
func (s *Schema) Name() string { return s.name }

// Fingerprint returns the CRC-64-AVRO fingerprint of the schema's Parsing
// Canonical Form. A frame carries it in little-endian byte order.
func (s *Schema) Fingerprint() uint64 { return s.fp }

// Canonical returns the schema's Parsing Canonical Form.
func (s *Schema) Canonical() string { return string(s.s.Canonical()) }

// String returns the full name and fingerprint, for messages.
func (s *Schema) String() string {
	return fmt.Sprintf("%s (fingerprint %s)", s.name, FormatFingerprint(s.fp))
}

// Fingerprint returns the CRC-64-AVRO fingerprint of a Parsing Canonical
// Form, as the Avro specification defines it (Java's
// SchemaNormalization.parsingFingerprint64).
func Fingerprint(canonical []byte) uint64 {
	h := ta.NewRabin()
	h.Write(canonical)
	return h.Sum64()
}

// FormatFingerprint renders a fingerprint as 16 lower-case hex digits of its
// 64-bit value, the form messages and docs use.
func FormatFingerprint(fp uint64) string { return fmt.Sprintf("%016x", fp) }

// FingerprintFromBytes reads a fingerprint stored little-endian (as in a
// frame).
func FingerprintFromBytes(b [8]byte) uint64 { return binary.LittleEndian.Uint64(b[:]) }

// SchemaOf derives the Avro record schema of the Go struct type T, with the
// record named after T and placed in namespace (such as "catalog.author").
// See the package documentation for the mapping rules.
func SchemaOf[T any](namespace string) (*Schema, error) {
	return schemaOfType(reflect.TypeFor[T](), namespace)
}

func schemaOfType(t reflect.Type, namespace string) (*Schema, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("avro: %s is not a struct type", t)
	}
	if t.Name() == "" {
		return nil, fmt.Errorf("avro: %s is an unnamed struct type; records are named after their Go type", t)
	}
	d := deriver{namespace: namespace, names: map[string]reflect.Type{}, active: map[reflect.Type]bool{}}
	node, err := d.record(t)
	if err != nil {
		return nil, fmt.Errorf("avro: derive schema of %s: %w", t, err)
	}
	s, err := node.Schema()
	if err != nil {
		return nil, fmt.Errorf("avro: derive schema of %s: %w", t, err)
	}
	return newSchema(s.String(), s), nil
}

// deriver turns Go types into schema nodes.
type deriver struct {
	namespace string
	names     map[string]reflect.Type // full record name -> Go type
	active    map[reflect.Type]bool   // records being derived (cycle check)
}

var timeType = reflect.TypeFor[time.Time]()

func (d *deriver) record(t reflect.Type) (*ta.SchemaNode, error) {
	full := t.Name()
	if d.namespace != "" {
		full = d.namespace + "." + full
	}
	if prev, ok := d.names[full]; ok && prev != t {
		return nil, fmt.Errorf("two Go types, %s and %s, would both be record %s", prev, t, full)
	}
	if d.active[t] {
		return nil, fmt.Errorf("recursive type %s is not supported", t)
	}
	if _, ok := d.names[full]; ok {
		// Defined before: refer to it by name.
		return &ta.SchemaNode{Type: full}, nil
	}
	d.names[full] = t
	d.active[t] = true
	defer delete(d.active, t)

	fields, err := structFields(t)
	if err != nil {
		return nil, err
	}
	node := &ta.SchemaNode{Type: "record", Name: t.Name(), Namespace: d.namespace, Fields: []ta.SchemaField{}}
	for _, f := range fields {
		ft, err := d.typeOf(f.typ, f.logical)
		if err != nil {
			return nil, fmt.Errorf("field %s.%s: %w", t.Name(), f.goName, err)
		}
		sf := ta.SchemaField{Name: f.name, Type: *ft, Aliases: f.aliases}
		switch {
		case f.dflt != nil:
			sf.Default, sf.HasDefault = tagDefault(*f.dflt), true
		case len(ft.Branches) > 0 && ft.Branches[0].Type == "null":
			sf.Default, sf.HasDefault = nil, true
		}
		node.Fields = append(node.Fields, sf)
	}
	return node, nil
}

// tagDefault reads a default= tag option as JSON, falling back to the text
// as a string (the rule of github.com/twmb/avro's SchemaFor).
func tagDefault(raw string) any {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return raw
	}
	if _, err := dec.Token(); err == nil {
		return raw // trailing garbage
	}
	return v
}

func (d *deriver) typeOf(t reflect.Type, logical string) (*ta.SchemaNode, error) {
	if logical != "" && t != timeType && (t.Kind() != reflect.Pointer || t.Elem() != timeType) {
		return nil, fmt.Errorf("logical type %s needs a time.Time field, not %s", logical, t)
	}
	switch t.Kind() {
	case reflect.Bool:
		return &ta.SchemaNode{Type: "boolean"}, nil
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16:
		return &ta.SchemaNode{Type: "int"}, nil
	case reflect.Int, reflect.Int64, reflect.Uint32:
		return &ta.SchemaNode{Type: "long"}, nil
	case reflect.Float32:
		return &ta.SchemaNode{Type: "float"}, nil
	case reflect.Float64:
		return &ta.SchemaNode{Type: "double"}, nil
	case reflect.String:
		return &ta.SchemaNode{Type: "string"}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return &ta.SchemaNode{Type: "bytes"}, nil
		}
		items, err := d.typeOf(t.Elem(), "")
		if err != nil {
			return nil, err
		}
		return &ta.SchemaNode{Type: "array", Items: items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map keys must be strings, not %s", t.Key())
		}
		values, err := d.typeOf(t.Elem(), "")
		if err != nil {
			return nil, err
		}
		return &ta.SchemaNode{Type: "map", Values: values}, nil
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Pointer {
			return nil, fmt.Errorf("pointer to pointer %s is not supported", t)
		}
		inner, err := d.typeOf(t.Elem(), logical)
		if err != nil {
			return nil, err
		}
		return &ta.SchemaNode{Type: "union", Branches: []ta.SchemaNode{{Type: "null"}, *inner}}, nil
	case reflect.Struct:
		if t == timeType {
			if logical == "" {
				logical = "timestamp-millis"
			}
			return &ta.SchemaNode{Type: "long", LogicalType: logical}, nil
		}
		if t.Name() == "" {
			return nil, fmt.Errorf("unnamed struct type %s is not supported; records are named after their Go type", t)
		}
		return d.record(t)
	}
	return nil, fmt.Errorf("type %s is not supported", t)
}

// field is one struct field as it maps to an Avro record field.
type field struct {
	index   int
	goName  string
	name    string
	typ     reflect.Type
	dflt    *string
	aliases []string
	logical string
}

// structFields lists the fields of struct type t that map to Avro fields.
func structFields(t reflect.Type) ([]field, error) {
	var out []field
	seen := map[string]string{}
	for i := range t.NumField() {
		sf := t.Field(i)
		avroTag, hasAvro := sf.Tag.Lookup("avro")
		jsonTag := sf.Tag.Get("json")
		if avroTag == "-" || (jsonTag == "-" && !hasAvro) {
			continue
		}
		if sf.Anonymous {
			return nil, fmt.Errorf("embedded field %s of %s is not supported; name it or tag it avro:\"-\"", sf.Name, t)
		}
		if !sf.IsExported() {
			continue
		}
		f := field{index: i, goName: sf.Name, name: sf.Name, typ: sf.Type}
		if n, _, _ := strings.Cut(jsonTag, ","); n != "" {
			f.name = n
		}
		if hasAvro {
			n, opts, err := splitAvroTag(avroTag)
			if err != nil {
				return nil, fmt.Errorf("field %s.%s: %w", t.Name(), sf.Name, err)
			}
			if n != "" {
				f.name = n
			}
			for _, o := range opts {
				switch {
				case strings.HasPrefix(o, "default="):
					v := strings.TrimPrefix(o, "default=")
					f.dflt = &v
				case strings.HasPrefix(o, "alias="):
					f.aliases = append(f.aliases, strings.TrimPrefix(o, "alias="))
				case o == "timestamp-millis" || o == "timestamp-micros":
					f.logical = o
				default:
					return nil, fmt.Errorf("field %s.%s: unsupported avro tag option %q", t.Name(), sf.Name, o)
				}
			}
		}
		if !validName(f.name) {
			return nil, fmt.Errorf("field %s.%s: %q is not a valid Avro name ([A-Za-z_][A-Za-z0-9_]*)", t.Name(), sf.Name, f.name)
		}
		if prev, dup := seen[f.name]; dup {
			return nil, fmt.Errorf("fields %s and %s of %s both map to Avro field %q", prev, sf.Name, t, f.name)
		}
		seen[f.name] = sf.Name
		out = append(out, f)
	}
	return out, nil
}

// splitAvroTag splits `name,opt,opt,default=rest`; default= takes the rest
// of the tag, commas included, so it must come last.
func splitAvroTag(tag string) (name string, opts []string, err error) {
	name, rest, _ := strings.Cut(tag, ",")
	for rest != "" {
		if strings.HasPrefix(rest, "default=") {
			opts = append(opts, rest)
			break
		}
		var o string
		o, rest, _ = strings.Cut(rest, ",")
		if o == "" {
			return "", nil, errors.New("empty avro tag option")
		}
		opts = append(opts, o)
	}
	return name, opts, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z':
		case i > 0 && '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return true
}
