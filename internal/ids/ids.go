// Package ids makes the identifiers the service hands out: random UUIDs for
// message and book ids, and name-based UUIDs (version 5) where a retry must
// arrive at the same id, as with an Idempotency-Key.
package ids

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
)

// namespace is the UUID namespace of this service's name-based ids.
const namespace = "\x6b\xa7\xb8\x10\x9d\xad\x11\xd1\x80\xb4\x00\xc0\x4f\xd4\x30\xc8"

// New returns a random (version 4) UUID in canonical lower-case form.
func New() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return format(u)
}

// FromName returns the name-based (version 5, SHA-1) UUID of the parts,
// joined with NUL bytes: the same parts always give the same id.
func FromName(parts ...string) string {
	h := sha1.New()
	h.Write([]byte(namespace))
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return format(u)
}

func format(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
