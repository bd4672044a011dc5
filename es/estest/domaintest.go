// Package estest is a given/when/then fixture for pure aggregates:
// given past events, when a command is decided, then expect events or a
// rejection. It knows nothing of any particular aggregate.
package estest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/bookscatalog/catalog/es"
)

// Aggregate is the pair of pure functions a fixture drives.
type Aggregate[S, C, E any] struct {
	Decide func(S, C) ([]E, error)
	Evolve func(S, E) S
}

// Case is one table row: Given events, When a command, Then either events
// (Want) or a rejection with code WantCode (and field WantField, if set).
type Case[S, C, E any] struct {
	Name      string
	Given     []E
	When      C
	Want      []E
	WantCode  string
	WantField string
	// Check, if set, is also called with the state after Given and Want.
	Check func(t *testing.T, s S)
}

// Run runs every case as a subtest.
func Run[S, C, E any](t *testing.T, agg Aggregate[S, C, E], cases []Case[S, C, E]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			var s S
			for _, e := range tc.Given {
				s = agg.Evolve(s, e)
			}
			got, err := agg.Decide(s, tc.When)
			if tc.WantCode != "" {
				// As the runtime sees it: an *es.Rejection, or a
				// domain error with a RejectionCode method.
				var coded interface{ RejectionCode() string }
				if err == nil || !errors.As(err, new(*es.Rejection)) && !errors.As(err, &coded) {
					t.Fatalf("Decide(%#v) = %#v, %v; want rejection %q", tc.When, got, err, tc.WantCode)
				}
				rej := es.AsRejection(err)
				if rej.Code != tc.WantCode || (tc.WantField != "" && rej.Field != tc.WantField) {
					t.Fatalf("rejection = %+v; want code %q field %q", rej, tc.WantCode, tc.WantField)
				}
				if got != nil {
					t.Fatalf("rejected command also returned events %#v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide(%#v) rejected: %v", tc.When, err)
			}
			if !reflect.DeepEqual(got, tc.Want) {
				t.Fatalf("events = %#v\nwant     %#v", got, tc.Want)
			}
			for _, e := range got {
				s = agg.Evolve(s, e)
			}
			if tc.Check != nil {
				tc.Check(t, s)
			}
		})
	}
}
