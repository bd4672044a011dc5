// Package domain holds what every aggregate of the catalog shares: the
// rejection codes that its commands fail with (as an *es.Rejection, the
// runtime's one rejection type) and the validation rules for identifiers
// and text. It is pure Go: no I/O, no Kafka, no encoding.
package domain

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bookscatalog/catalog/es"
)

// Rejection codes of the catalog's domain, beside the runtime's own (es.Code*).
// They are part of the service's contract: outcomes on the results topic
// carry them, and the HTTP layer maps them to status codes.
const (
	// CodeAlreadyExists: the aggregate to create exists already.
	CodeAlreadyExists = es.CodeAlreadyExists
	// CodeNotFound: the aggregate is missing or was deleted.
	CodeNotFound = es.CodeNotFound
	// CodeInvalid: a field of the command breaks a rule; Field names it.
	CodeInvalid = es.CodeInvalid
	// CodeUnknownReference: the command refers to another aggregate that
	// does not exist (for example a book's author).
	CodeUnknownReference = "unknown_reference"
	// CodeTooLarge: the command would make the aggregate larger than it
	// may grow (so that its state always fits a Kafka record); Field
	// names what would grow too much.
	CodeTooLarge = "too_large"
)

// Invalid returns a CodeInvalid rejection about field.
func Invalid(field, format string, args ...any) *es.Rejection {
	return es.Reject(CodeInvalid, field, format, args...)
}

// TooLarge returns a CodeTooLarge rejection about field.
func TooLarge(field, format string, args ...any) *es.Rejection {
	return es.Reject(CodeTooLarge, field, format, args...)
}

// NotFound returns a CodeNotFound rejection.
func NotFound(format string, args ...any) *es.Rejection {
	return es.Reject(CodeNotFound, "", format, args...)
}

// AlreadyExists returns a CodeAlreadyExists rejection.
func AlreadyExists(format string, args ...any) *es.Rejection {
	return es.Reject(CodeAlreadyExists, "", format, args...)
}

// MaxSlugLen bounds slugs so that keys stay short on every topic.
const MaxSlugLen = 64

var slugRE = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// ValidateSlug checks that s is a slug: lower-case letters and digits in
// groups joined by single hyphens, at most MaxSlugLen bytes.
func ValidateSlug(field, s string) *es.Rejection {
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

// ValidateName checks that a free-text field on one line is not blank, not
// too long and holds only printable text (see ValidateText).
func ValidateName(field, s string) *es.Rejection {
	switch {
	case strings.TrimSpace(s) == "":
		return Invalid(field, "must not be blank")
	case len(s) > MaxNameLen:
		return Invalid(field, "must be at most %d bytes", MaxNameLen)
	}
	return validateText(field, s, false)
}

// ValidateText checks that multi-line free text (a chapter's content) is
// valid UTF-8 without control characters other than line feed, carriage
// return and tab, and without bidirectional formatting characters. Its
// length is the caller's rule.
func ValidateText(field, s string) *es.Rejection {
	return validateText(field, s, true)
}

// validateText refuses invalid UTF-8, control characters (Unicode category
// Cc: C0, DEL and C1; in multi-line text \n, \r and \t are allowed) and the
// bidirectional formatting characters. Control characters break logs,
// terminals and the pages that show the text; bidirectional overrides make
// text display in another order than it is stored ("Trojan Source"), so
// that a title could read differently than it sorts or searches.
func validateText(field, s string, multiline bool) *es.Rejection {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return Invalid(field, "must be valid UTF-8 (invalid byte at offset %d)", i)
		case multiline && (r == '\n' || r == '\r' || r == '\t'):
		case unicode.IsControl(r):
			return Invalid(field, "must not contain control characters (U+%04X at byte %d)", r, i)
		case isBidiFormatting(r):
			return Invalid(field, "must not contain bidirectional formatting characters (U+%04X at byte %d)", r, i)
		}
	}
	return nil
}

// isBidiFormatting reports whether r is one of the characters that change
// the direction text is displayed in: the embeddings and overrides
// (U+202A–U+202E), the isolates (U+2066–U+2069) and the implicit marks
// (U+200E, U+200F, U+061C).
func isBidiFormatting(r rune) bool {
	switch {
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x200E, r == 0x200F, r == 0x061C:
		return true
	}
	return false
}
