// Package schemaregistry keeps Avro schemas in a compacted Kafka topic, so
// that readers of single-object frames can find a writer's schema by the
// fingerprint in the frame. No registry service is needed: the topic is the
// registry, and every instance keeps the whole of it in memory (schemas are
// few and small).
//
// The topic: one partition, cleanup.policy=compact, retention.ms=-1. A
// record's key is the schema's CRC-64-AVRO fingerprint as 8 bytes,
// big-endian (what Java's LongSerializer writes for the fingerprint as a
// long, as the Kaa library does); its value is the schema's full JSON, UTF-8.
// docs/wire-format.md describes it for other teams.
//
// Rules:
//
//   - Register writes a schema, and returns only once the broker has
//     acknowledged it, so a writer that registers at start-up has its
//     schemas in the topic before its first record that uses them. It is
//     idempotent: a schema already in the topic is not written again.
//
//   - A fingerprint stands for one schema JSON: registering a different JSON
//     (compared as JSON values, so whitespace and member order do not
//     matter) under a fingerprint the topic has already is an error
//     (ErrConflict). Such a pair has the same canonical form (a doc string or
//     a default differs), so readers lose nothing: they keep the first JSON
//     the topic holds and log the other. A registry that reads a record,
//     bad or conflicting, after a schema under the same key writes the
//     schema again: compaction keeps a key's last record, and would keep
//     that one instead.
//
//   - Lookup of a fingerprint unknown to the instance catches up on the
//     topic (read_uncommitted, to its end: nobody writes it in a
//     transaction, and one left open would hide the schemas after it until
//     it timed out) and fails, with an
//     error wrapping avro.ErrUnknownSchema, if it is still unknown: it never
//     guesses. Concurrent look-ups share one catch-up.
//
//   - Records that are not valid (a key not 8 bytes long, a value that is
//     not JSON, not an Avro schema, or whose fingerprint is not the key) are
//     skipped and logged with their partition, offset and key; a look-up of
//     such a key says why. No record stops a registry from starting or from
//     reading the records after it.
//
//   - A tombstone removes its fingerprint's schema (Registry.Delete writes
//     one). Writers never delete a schema, since records written with it may
//     live forever; an operator does, to remove one registered by mistake
//     that keeps a service from starting (the catalog's command for it is
//     `catalog schemas delete`).
//
//   - A registry topic deleted and created again is noticed at the next
//     catch-up (its id changed, or its end is below what was read): the
//     registry reads it again from the start, after writing again the
//     schemas it registered itself.
//
// Memory is the same registry without Kafka, for tests.
package schemaregistry

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/bookscatalog/catalog/avro"
)

// ErrConflict: the fingerprint is registered with a different schema JSON.
var ErrConflict = errors.New("schemaregistry: fingerprint already registered with a different schema JSON")

// Key returns the registry topic's key for a fingerprint: 8 bytes,
// big-endian.
func Key(fingerprint uint64) []byte { return binary.BigEndian.AppendUint64(nil, fingerprint) }

// ParseKey reads a registry topic's key.
func ParseKey(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("schemaregistry: key of %d bytes, want 8 (the fingerprint, big-endian)", len(k))
	}
	return binary.BigEndian.Uint64(k), nil
}

// parse validates a schema's JSON and returns its fingerprint.
func parse(schemaJSON string) (uint64, error) {
	s, err := avro.ParseSchema(schemaJSON)
	if err != nil {
		return 0, fmt.Errorf("schemaregistry: %w", err)
	}
	return s.Fingerprint(), nil
}

// sameJSON reports whether a and b are the same JSON value: whitespace and
// the order of object members do not matter.
func sameJSON(a, b string) bool {
	if a == b {
		return true
	}
	va, oka := decodeJSON(a)
	vb, okb := decodeJSON(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}

func decodeJSON(s string) (any, bool) {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

func conflict(fp uint64, have string) error {
	f := avro.FormatFingerprint(fp)
	return fmt.Errorf("%w: %s is registered as %s; a schema that differs from a registered one only in what the "+
		"canonical form leaves out (defaults, docs, aliases, logical types) cannot be registered; "+
		"if registered schema %s is wrong, remove it with `catalog schemas delete %s`", ErrConflict, f, clip(have), f, f)
}
