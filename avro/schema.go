package avro

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"sync/atomic"

	ta "github.com/twmb/avro"
)

// Schema is one Avro schema: its full JSON (what the registry stores), its
// full name (for a record: namespace + "." + name) and its fingerprint, the
// CRC-64-AVRO (Rabin) hash of its Parsing Canonical Form.
type Schema struct {
	s          *ta.Schema
	node       *ta.SchemaNode // s.Root(), which re-parses on every call
	name       string
	fp         uint64
	registered atomic.Bool // set once a registry holds it (see Register)
}

// ParseSchema parses a schema's JSON, as stored in the registry.
func ParseSchema(schemaJSON string) (*Schema, error) {
	s, err := ta.Parse(schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("avro: parse schema: %w", err)
	}
	return newSchema(s), nil
}

func newSchema(s *ta.Schema) *Schema {
	root := s.Root()
	name := root.Name
	switch {
	case name == "":
		name = root.Type // a primitive, array, map or union
	case root.Namespace != "":
		name = root.Namespace + "." + name
	}
	// The library writes the Rabin fingerprint big-endian, as hash.Hash64s do.
	return &Schema{s: s, node: root, name: name, fp: binary.BigEndian.Uint64(s.Fingerprint(ta.NewRabin()))}
}

// JSON returns the schema's full JSON, with defaults and aliases: the value
// of its registry record.
func (s *Schema) JSON() string { return s.s.String() }

// Name returns the schema's full name, such as
// "bank.account.Deposited"; for an unnamed schema, its type.
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

// FormatFingerprint renders a fingerprint as 16 lower-case hex digits of its
// 64-bit value, the form messages and docs use.
func FormatFingerprint(fp uint64) string { return fmt.Sprintf("%016x", fp) }

// Member is one struct type of a Union; Of makes one. (A type parameter,
// not a value of the type, for the library derives schemas from type
// parameters: SchemaFor[T].)
type Member struct {
	t reflect.Type
	// schema derives the record schema in a namespace.
	schema func(namespace string) (*ta.Schema, error)
	// decode decodes a body with a schema (the member's own, or a
	// writer's resolved against it) into a value of the type.
	decode func(s *ta.Schema, body []byte) (any, []byte, error)
}

// Of is the member of type T, a struct type whose record is named after T
// and whose fields are named by their avro tags.
func Of[T any]() Member {
	return Member{
		t: reflect.TypeFor[T](),
		schema: func(namespace string) (*ta.Schema, error) {
			s, err := ta.SchemaFor[T](ta.WithNamespace(namespace), emptyBytesAreNil())
			if err != nil {
				return nil, err
			}
			// SchemaFor repeats the namespace on nested records; the
			// registry holds them without it (one JSON per fingerprint),
			// as the library writes a schema tree back.
			return s.Root().Schema(emptyBytesAreNil())
		},
		decode: func(s *ta.Schema, body []byte) (any, []byte, error) {
			var v T
			rest, err := s.Decode(body, &v)
			return v, rest, err
		},
	}
}

// emptyBytesAreNil decodes empty Avro bytes as a nil []byte, where the
// library gives a non-nil empty slice: Avro cannot tell the two apart, and
// nil is Go's "no bytes" (an outcome's State is nil when the aggregate does
// not exist, and its readers test for nil). A custom type changes neither
// the schema nor the encoding.
func emptyBytesAreNil() ta.CustomType {
	return ta.CustomType{AvroType: "bytes", Decode: func(v any, _ *ta.SchemaNode) (any, error) {
		if b, ok := v.([]byte); ok && len(b) == 0 {
			return []byte(nil), nil
		}
		return v, nil
	}}
}
