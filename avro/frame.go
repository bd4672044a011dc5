package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The Avro single-object encoding: two magic bytes, the writer schema's
// fingerprint (8 bytes, little-endian), then the Avro binary body.
const (
	Magic0    = 0xC3
	Magic1    = 0x01
	HeaderLen = 10
)

// Errors of encoding and decoding; test with errors.Is. Every one but
// ErrRegistryUnavailable is permanent: the same bytes will fail the same way
// again.
var (
	// ErrNotAvro: the bytes are not a single-object frame (too short for
	// the header, or wrong magic).
	ErrNotAvro = errors.New("not an Avro single-object frame")
	// ErrUnknownSchema: the frame's fingerprint is in no registered
	// schema, even after catching up on the registry. A Registry's Lookup
	// returns an error wrapping it for such a fingerprint.
	ErrUnknownSchema = errors.New("unknown schema fingerprint")
	// ErrRegistryUnavailable: the registry could not be asked in time
	// (broker down, timeout). Retrying later may succeed.
	ErrRegistryUnavailable = errors.New("schema registry unavailable")
	// ErrWrongType: the frame holds a type that this codec does not
	// decode (an event given to a state codec, say).
	ErrWrongType = errors.New("record of another type")
	// ErrIncompatible: the writer's schema cannot be resolved against
	// the reader's (a change that breaks compatibility).
	ErrIncompatible = errors.New("incompatible schema")
	// ErrMalformedBody: the body does not decode with the writer's
	// schema (truncated, corrupt, or trailing bytes).
	ErrMalformedBody = errors.New("malformed Avro body")
	// ErrNotRegistered: Encode was called before the codec's schemas were
	// registered (see Register).
	ErrNotRegistered = errors.New("schema not registered")
)

// ParseFrame splits a single-object frame into the writer's fingerprint and
// the body. It never looks at the body.
func ParseFrame(b []byte) (fingerprint uint64, body []byte, err error) {
	if len(b) < HeaderLen {
		return 0, nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrNotAvro, len(b), HeaderLen)
	}
	if b[0] != Magic0 || b[1] != Magic1 {
		return 0, nil, fmt.Errorf("%w: starts with %#02x %#02x, want 0xc3 0x01", ErrNotAvro, b[0], b[1])
	}
	return binary.LittleEndian.Uint64(b[2:HeaderLen]), b[HeaderLen:], nil
}

// AppendFrameHeader appends the header of a frame written with the schema
// of the given fingerprint.
func AppendFrameHeader(dst []byte, fingerprint uint64) []byte {
	dst = append(dst, Magic0, Magic1)
	return binary.LittleEndian.AppendUint64(dst, fingerprint)
}
