package es_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/bookscatalog/catalog/es"
)

// coded is a domain error type of its own, recognised by its methods.
type coded struct{}

func (coded) Error() string            { return "gone: the thing is gone" }
func (coded) RejectionCode() string    { return "gone" }
func (coded) RejectionField() string   { return "thing" }
func (coded) RejectionMessage() string { return "the thing is gone" }

func TestAsRejection(t *testing.T) {
	rej := es.Reject("not_found", "", "author %q not found", "jane")
	for _, c := range []struct {
		name string
		err  error
		want es.Rejection
	}{
		{"a rejection", rej, *rej},
		{"a wrapped rejection", fmt.Errorf("deciding: %w", rej), *rej},
		{"a rejection with a field", es.Reject("invalid", "code", "must be a slug"), es.Rejection{Code: "invalid", Field: "code", Message: "must be a slug"}},
		{"an error type of the domain", coded{}, es.Rejection{Code: "gone", Field: "thing", Message: "the thing is gone"}},
		{"any other error", errors.New("disk on fire"), es.Rejection{Code: es.CodeInternal, Message: "disk on fire"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := es.AsRejection(c.err)
			if *got != c.want {
				t.Fatalf("AsRejection = %+v, want %+v", got, c.want)
			}
			if got == rej {
				t.Fatal("AsRejection returned the domain's rejection itself, not a copy")
			}
		})
	}
}

func TestRejectionError(t *testing.T) {
	if got := es.Reject("invalid", "code", "must be at most %d characters", 64).Error(); got != "invalid: code: must be at most 64 characters" {
		t.Errorf("with a field: %q", got)
	}
	if got := es.Reject("not_found", "", "author %q not found", "jane").Error(); got != `not_found: author "jane" not found` {
		t.Errorf("without a field: %q", got)
	}
}

func TestHandle(t *testing.T) {
	agg := es.Aggregate[int, string, string]{
		Name: "counters",
		Decide: func(s int, c string) ([]string, error) {
			if c == "bad" {
				return nil, es.Reject("invalid", "cmd", "bad command")
			}
			return []string{c}, nil
		},
		Evolve:  func(s int, _ string) int { return s + 1 },
		Key:     func(string) string { return "k" },
		Version: func(s int) int64 { return int64(s) },
	}
	s, evs, rej := agg.Handle(1, "inc", nil)
	if s != 2 || len(evs) != 1 || rej != nil {
		t.Fatalf("accepted: %d %v %v", s, evs, rej)
	}
	if s, _, rej := agg.Handle(1, "bad", nil); s != 1 || rej == nil || rej.Code != "invalid" || rej.Field != "cmd" {
		t.Fatalf("rejected by the domain: %d %+v", s, rej)
	}
	v := int64(5)
	if s, _, rej := agg.Handle(1, "inc", &v); s != 1 || rej == nil || rej.Code != es.CodeVersionMismatch {
		t.Fatalf("at another version: %d %+v", s, rej)
	}
}
