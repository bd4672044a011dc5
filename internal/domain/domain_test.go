package domain_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/internal/domain"
)

func TestValidateNameAndText(t *testing.T) {
	for _, c := range []struct {
		name, in string
		// name and text: whether ValidateName and ValidateText accept.
		okName, okText bool
	}{
		{"plain", "Pride and Prejudice", true, true},
		{"accents, scripts, emoji", "Émile Zola — 漢字 العربية 📚", true, true},
		{"a real U+FFFD", "broken \uFFFD glyph", true, true},
		{"zero-width joiner (not a bidi control)", "a\u200db", true, true},
		{"line feed", "a\nb", false, true},
		{"carriage return", "a\rb", false, true},
		{"tab", "a\tb", false, true},
		{"NUL", "a\x00b", false, false},
		{"bell", "a\x07b", false, false},
		{"escape", "\x1b[31mred", false, false},
		{"unit separator", "a\x1fb", false, false},
		{"DEL", "a\x7fb", false, false},
		{"C1 NEL", "a\u0085b", false, false},
		{"C1 CSI", "a\u009bb", false, false},
		{"C1 last", "a\u009fb", false, false},
		{"no-break space after C1", "a\u00a0b", true, true},
		{"LRE", "a\u202ab", false, false},
		{"RLE", "a\u202bb", false, false},
		{"PDF", "a\u202cb", false, false},
		{"LRO", "a\u202db", false, false},
		{"RLO", "a\u202eb", false, false},
		{"LRI", "a\u2066b", false, false},
		{"RLI", "a\u2067b", false, false},
		{"FSI", "a\u2068b", false, false},
		{"PDI", "a\u2069b", false, false},
		{"LRM", "a\u200eb", false, false},
		{"RLM", "a\u200fb", false, false},
		{"ALM", "a\u061cb", false, false},
		{"invalid UTF-8", "a\xffb", false, false},
		{"truncated UTF-8", "caf\xc3", false, false},
		{"encoded surrogate", "a\xed\xa0\x80b", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rej := domain.ValidateName("title", c.in)
			if (rej == nil) != c.okName {
				t.Errorf("ValidateName(%q) = %v, want ok %v", c.in, rej, c.okName)
			}
			if rej != nil && (rej.Code != domain.CodeInvalid || rej.Field != "title") {
				t.Errorf("ValidateName(%q) = %+v, want invalid title", c.in, rej)
			}
			rej = domain.ValidateText("content", c.in)
			if (rej == nil) != c.okText {
				t.Errorf("ValidateText(%q) = %v, want ok %v", c.in, rej, c.okText)
			}
			if rej != nil && (rej.Code != domain.CodeInvalid || rej.Field != "content") {
				t.Errorf("ValidateText(%q) = %+v, want invalid content", c.in, rej)
			}
		})
	}
}

func TestValidateTextNamesCharacter(t *testing.T) {
	rej := domain.ValidateText("content", "ok\nthen \u202e here")
	if rej == nil || !strings.Contains(rej.Message, "U+202E") || !strings.Contains(rej.Message, "byte 8") {
		t.Fatalf("rejection = %v; want one naming U+202E at byte 8", rej)
	}
	// The message names the character, it does not repeat the text.
	if strings.Contains(rej.Message, "then") {
		t.Fatalf("rejection %q echoes the text", rej.Message)
	}
}

func TestTooLarge(t *testing.T) {
	rej := domain.TooLarge("chapters", "at most %d", 200)
	if domain.CodeTooLarge != "too_large" || rej.Code != domain.CodeTooLarge || rej.Field != "chapters" || rej.Message != "at most 200" {
		t.Fatalf("TooLarge = %+v", rej)
	}
	if got := es.AsRejection(fmt.Errorf("adding a chapter: %w", rej)); *got != *rej {
		t.Fatalf("the runtime reads a wrapped domain rejection as %+v, want %+v", got, rej)
	}
	if rej.Error() != "too_large: chapters: at most 200" {
		t.Fatalf("Error() = %q", rej.Error())
	}
}
