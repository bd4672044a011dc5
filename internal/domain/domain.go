// Package domain holds what every aggregate of the catalog shares: the
// rejection type that commands fail with and the validation rules for
// identifiers. It is pure Go: no I/O, no Kafka, no encoding.
package domain

import (
	"fmt"
	"regexp"
	"strings"
)

// Rejection codes. They are part of the service's contract: outcomes on the
// results topic carry them, and the HTTP layer maps them to status codes.
const (
	// CodeAlreadyExists: the aggregate to create exists already.
	CodeAlreadyExists = "already_exists"
	// CodeNotFound: the aggregate is missing or was deleted.
	CodeNotFound = "not_found"
	// CodeInvalid: a field of the command breaks a rule; Field names it.
	CodeInvalid = "invalid"
	// CodeUnknownReference: the command refers to another aggregate that
	// does not exist (for example a book's author).
	CodeUnknownReference = "unknown_reference"
)

// Rejection is the outcome of a command the domain refuses. It is an
// outcome, not an event: it changes no state.
type Rejection struct {
	// Code is one of the Code* constants.
	Code string
	// Field names the offending field for CodeInvalid, else empty.
	Field string
	// Message says what is wrong in words a writer understands.
	Message string
}

// Error implements error.
func (r *Rejection) Error() string {
	if r.Field != "" {
		return fmt.Sprintf("%s: %s: %s", r.Code, r.Field, r.Message)
	}
	return r.Code + ": " + r.Message
}

// RejectionCode returns the code; the runtime reads it through an interface
// so that it needs no import of this package.
func (r *Rejection) RejectionCode() string { return r.Code }

// RejectionMessage returns the message without the code.
func (r *Rejection) RejectionMessage() string { return r.Message }

// RejectionField returns the field the rejection is about, if any.
func (r *Rejection) RejectionField() string { return r.Field }

// Invalid returns a CodeInvalid rejection about field.
func Invalid(field, format string, args ...any) *Rejection {
	return &Rejection{Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound returns a CodeNotFound rejection.
func NotFound(format string, args ...any) *Rejection {
	return &Rejection{Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

// AlreadyExists returns a CodeAlreadyExists rejection.
func AlreadyExists(format string, args ...any) *Rejection {
	return &Rejection{Code: CodeAlreadyExists, Message: fmt.Sprintf(format, args...)}
}

// MaxSlugLen bounds slugs so that keys stay short on every topic.
const MaxSlugLen = 64

var slugRE = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// ValidateSlug checks that s is a slug: lower-case letters and digits in
// groups joined by single hyphens, at most MaxSlugLen bytes.
func ValidateSlug(field, s string) *Rejection {
	switch {
	case s == "":
		return Invalid(field, "must not be empty")
	case len(s) > MaxSlugLen:
		return Invalid(field, "must be at most %d characters", MaxSlugLen)
	case !slugRE.MatchString(s):
		return Invalid(field, "must be a slug: lower-case letters and digits joined by single hyphens, such as %q", "jane-austen")
	}
	return nil
}

// MaxNameLen bounds free-text names and titles.
const MaxNameLen = 200

// ValidateName checks that a free-text field is not blank and not too long.
func ValidateName(field, s string) *Rejection {
	switch {
	case strings.TrimSpace(s) == "":
		return Invalid(field, "must not be blank")
	case len(s) > MaxNameLen:
		return Invalid(field, "must be at most %d bytes", MaxNameLen)
	}
	return nil
}
