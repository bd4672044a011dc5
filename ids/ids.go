// Package ids makes the identifiers a service hands out: random UUIDs for
// new aggregates and message ids, and name-based UUIDs (version 5) where a
// retry must arrive at the same id, as with an Idempotency-Key, or a
// reaction must send the same command however often its input is read.
package ids

import (
	"strings"

	"github.com/google/uuid"
)

// New returns a random (version 4) UUID in canonical lower-case form.
func New() string { return uuid.NewString() }

// FromName returns the name-based (version 5, SHA-1) UUID of the parts,
// joined with NUL bytes: the same parts always give the same id. The
// namespace is RFC 4122's DNS namespace, the one ids have always been made
// in: another would change every id, and a retry that spans an upgrade
// would no longer find its first attempt.
func FromName(parts ...string) string {
	return uuid.NewSHA1(uuid.NameSpaceDNS, []byte(strings.Join(parts, "\x00"))).String()
}
