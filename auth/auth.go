// Package auth tells who is calling a service's HTTP API and what they
// may do: it checks bearer tokens, from a file of hashed tokens
// (TokenFile) or issued by an OpenID Connect provider (OIDC), and turns
// them into a Principal, a subject with roles (reader, writer, admin).
// What each role may do is the HTTP layer's policy (package httpapi's
// Access; docs/security.md tells the catalog's); this package only
// authenticates. TokensCommand is the command line that issues tokens and
// hashes them for a token file (the catalog runs it as `catalog tokens`,
// and its usage names that command; tokens start with TokenPrefix,
// "catalog_", kept so that tokens already issued stay recognisable).
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Role is what a principal may do. Roles are ordered: each includes the
// ones before it.
type Role string

// The roles, from least to most.
const (
	// RoleReader may read, which matters only when reads need a token.
	RoleReader Role = "reader"
	// RoleWriter may read and send commands (every write).
	RoleWriter Role = "writer"
	// RoleAdmin may do everything, operator endpoints included.
	RoleAdmin Role = "admin"
)

// Roles are the known roles, from least to most.
var Roles = []Role{RoleReader, RoleWriter, RoleAdmin}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q: want one of reader, writer, admin", s)
}

// rank orders roles; an unknown role ranks below reader.
func (r Role) rank() int { return slices.Index(Roles, r) }

// Principal is an authenticated caller.
type Principal struct {
	// Subject names the caller; it is recorded with every command the
	// caller sends (the "subject" header).
	Subject string
	// Roles are the caller's roles; unknown ones are dropped.
	Roles []Role
}

// Has reports whether p has role or a role that includes it.
func (p *Principal) Has(role Role) bool {
	if p == nil {
		return false
	}
	for _, r := range p.Roles {
		if r.rank() >= role.rank() && role.rank() >= 0 {
			return true
		}
	}
	return false
}

// Authenticator checks a bearer token.
type Authenticator interface {
	// Authenticate returns the principal a token stands for. An error
	// that wraps ErrUnavailable means the token could not be checked
	// now (503, retry); any other error means it is not good (401) and
	// wraps ErrInvalidToken.
	Authenticate(ctx context.Context, token string) (*Principal, error)
}

// Errors of Authenticate.
var (
	// ErrInvalidToken: the token is unknown, malformed, expired, for
	// another audience or badly signed.
	ErrInvalidToken = errors.New("invalid token")
	// ErrUnavailable: the token cannot be checked right now (the
	// identity provider's keys cannot be fetched); retry later.
	ErrUnavailable = errors.New("cannot check tokens right now")
)

// Chain tries each authenticator in turn and returns the first principal.
// With a token file and an identity provider both configured, either kind
// of token works. A token none accepts is invalid, unless one of them
// could not check it (ErrUnavailable): that one might have accepted it, so
// the caller is told to retry rather than that the token is bad.
type Chain []Authenticator

// Authenticate implements Authenticator.
func (c Chain) Authenticate(ctx context.Context, token string) (*Principal, error) {
	var errs []error
	for _, a := range c {
		p, err := a.Authenticate(ctx, token)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%w: no authenticator configured", ErrInvalidToken)
	}
	return nil, errors.Join(errs...)
}

// MaxSubjectBytes bounds a subject: it rides on every command and event
// record the caller causes.
const MaxSubjectBytes = 255

// CheckSubject returns an error unless s can name a caller on the records:
// not empty, at most MaxSubjectBytes of valid UTF-8, no control or
// bidirectional formatting characters (which would make a history read
// differently from what it holds).
func CheckSubject(s string) error {
	switch {
	case s == "":
		return errors.New("empty subject")
	case len(s) > MaxSubjectBytes:
		return fmt.Errorf("subject of %d bytes, more than %d", len(s), MaxSubjectBytes)
	case !utf8.ValidString(s):
		return errors.New("subject is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return fmt.Errorf("subject has the control character %U", r)
		}
	}
	if strings.TrimSpace(s) != s {
		return errors.New("subject starts or ends with a space")
	}
	return nil
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal ctx carries, nil when none (no
// authentication configured, or an open endpoint).
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
