package estest_test

import (
	"testing"

	"github.com/bookscatalog/catalog/es/estest"
)

// overdrawn is a domain's own error type: es.AsRejection, and so the
// runtime and the HTTP API, read its code and field from its methods.
type overdrawn struct{}

func (overdrawn) Error() string          { return "the balance is too low" }
func (overdrawn) RejectionCode() string  { return "insufficient_funds" }
func (overdrawn) RejectionField() string { return "amount" }

// Run takes a rejection the way the runtime does: a domain error with a
// RejectionCode method is one. Before, Run wanted an *es.Rejection and
// failed such a case.
func TestRunTakesADomainsOwnRejections(t *testing.T) {
	strict := func(s balance, c command) ([]event, error) {
		if w, ok := c.(withdraw); ok && w.Amount > s.Amount {
			return nil, overdrawn{}
		}
		return decide(s, c)
	}
	estest.Run(t, estest.Aggregate[balance, command, event]{Decide: strict, Evolve: evolve}, []estest.Case[balance, command, event]{{
		Name:     "never overdraw",
		Given:    []event{deposited{10}},
		When:     withdraw{30},
		WantCode: "insufficient_funds", WantField: "amount",
	}})
}
