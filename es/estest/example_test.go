package estest_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/es/estest"
)

// A bank account's balance, its commands and its events.
type balance struct{ Amount int64 }

type command interface{ isCommand() }

type deposit struct{ Amount int64 }
type withdraw struct{ Amount int64 }

func (deposit) isCommand()  {}
func (withdraw) isCommand() {}

type event interface{ isEvent() }

type deposited struct{ Amount int64 }
type withdrawn struct{ Amount int64 }

func (deposited) isEvent() {}
func (withdrawn) isEvent() {}

func decide(s balance, c command) ([]event, error) {
	switch c := c.(type) {
	case deposit:
		return []event{deposited(c)}, nil
	case withdraw:
		if c.Amount > s.Amount {
			return nil, es.Reject("insufficient_funds", "amount", "the balance is %d", s.Amount)
		}
		return []event{withdrawn(c)}, nil
	}
	return nil, fmt.Errorf("unknown command %T", c)
}

func evolve(s balance, e event) balance {
	switch e := e.(type) {
	case deposited:
		s.Amount += e.Amount
	case withdrawn:
		s.Amount -= e.Amount
	}
	return s
}

// cases are a domain's given/when/then table: past events, a command, and
// the events or the rejection code it must give.
func cases() []estest.Case[balance, command, event] {
	return []estest.Case[balance, command, event]{
		{
			Name:  "withdraw within the balance",
			Given: []event{deposited{100}},
			When:  withdraw{30},
			Want:  []event{withdrawn{30}},
			Check: func(t *testing.T, s balance) {
				if s.Amount != 70 {
					t.Errorf("balance %d, want 70", s.Amount)
				}
			},
		},
		{
			Name:     "never overdraw",
			Given:    []event{deposited{100}, withdrawn{80}},
			When:     withdraw{30},
			WantCode: "insufficient_funds", WantField: "amount",
		},
	}
}

// TestBalance is what a domain package's test looks like: one Run over
// its table. (Run needs the *testing.T of a test, so the example below
// only shows what Run does with each case.)
func TestBalance(t *testing.T) {
	estest.Run(t, estest.Aggregate[balance, command, event]{Decide: decide, Evolve: evolve}, cases())
}

// ExampleRun shows what Run checks for each case of TestBalance above:
// it folds Given into a state, decides When, and compares the events (or
// the rejection's code and field) with those the case wants.
func ExampleRun() {
	for _, tc := range cases() {
		var s balance
		for _, e := range tc.Given {
			s = evolve(s, e)
		}
		events, err := decide(s, tc.When)
		if rej, ok := errors.AsType[*es.Rejection](err); ok {
			fmt.Printf("%s: rejected %s (%s), want %s (%s)\n", tc.Name, rej.Code, rej.Field, tc.WantCode, tc.WantField)
			continue
		}
		fmt.Printf("%s: %v, want %v\n", tc.Name, events, tc.Want)
	}
	// Output:
	// withdraw within the balance: [{30}], want [{30}]
	// never overdraw: rejected insufficient_funds (amount), want insufficient_funds (amount)
}
