package es_test

import (
	"errors"
	"fmt"

	"github.com/bookscatalog/catalog/es"
)

// A bank account, as small as an aggregate gets: its state, its commands
// and its events. The commands and events are interfaces so that one
// aggregate has several of each.
type account struct {
	ID      string
	Balance int64
	Version int64
}

type command interface{ accountID() string }

type deposit struct {
	ID     string
	Amount int64
}

type withdraw struct {
	ID     string
	Amount int64
}

func (c deposit) accountID() string  { return c.ID }
func (c withdraw) accountID() string { return c.ID }

type event interface{ isEvent() }

type deposited struct{ Amount int64 }
type withdrawn struct{ Amount int64 }

func (deposited) isEvent() {}
func (withdrawn) isEvent() {}

// accounts is the aggregate: decide and evolve are pure, and the runtime
// asks the other functions for the key, version and existence it needs.
func accounts() es.Aggregate[account, command, event] {
	return es.Aggregate[account, command, event]{
		Name: "accounts",
		Decide: func(s account, c command) ([]event, error) {
			switch c := c.(type) {
			case deposit:
				if c.Amount <= 0 {
					return nil, es.Reject(es.CodeInvalid, "amount", "a deposit must be positive, not %d", c.Amount)
				}
				return []event{deposited{c.Amount}}, nil
			case withdraw:
				if c.Amount > s.Balance {
					// A code of the domain's own, beside the
					// runtime's.
					return nil, es.Reject("insufficient_funds", "amount", "the balance is %d", s.Balance)
				}
				return []event{withdrawn{c.Amount}}, nil
			}
			return nil, fmt.Errorf("unknown command %T", c)
		},
		Evolve: func(s account, e event) account {
			switch e := e.(type) {
			case deposited:
				s.Balance += e.Amount
			case withdrawn:
				s.Balance -= e.Amount
			}
			s.Version++
			return s
		},
		Key:     func(c command) string { return c.accountID() },
		Version: func(s account) int64 { return s.Version },
		Exists:  func(s account) bool { return s.Version > 0 },
	}
}

// ExampleAggregate_Handle runs commands against a state the way the
// runtime does for each command record: decide, then fold the events; a
// rejection leaves the state as it was.
func ExampleAggregate_Handle() {
	agg := accounts()
	var s account
	for _, c := range []command{deposit{"a1", 100}, withdraw{"a1", 30}, withdraw{"a1", 500}, deposit{"a1", -5}} {
		next, events, rej := agg.Handle(s, c, nil)
		if rej != nil {
			fmt.Printf("%T rejected: %v\n", c, rej)
			continue
		}
		s = next
		fmt.Printf("%T: %v, balance %d at version %d\n", c, events, s.Balance, agg.Version(s))
	}

	// A writer that read the account at version 1 expects it still
	// (optimistic concurrency): the command is refused, for another
	// changed the account since.
	stale := int64(1)
	_, _, rej := agg.Handle(s, deposit{"a1", 10}, &stale)
	fmt.Println(rej.Code)
	// Output:
	// es_test.deposit: [{100}], balance 100 at version 1
	// es_test.withdraw: [{30}], balance 70 at version 2
	// es_test.withdraw rejected: insufficient_funds: amount: the balance is 70
	// es_test.deposit rejected: invalid: amount: a deposit must be positive, not -5
	// version_mismatch
}

// overdrawn is a domain's own error type: AsRejection reads its code from
// the RejectionCode method, so the domain need not build es.Rejections.
type overdrawn struct{ balance int64 }

func (e overdrawn) Error() string          { return fmt.Sprintf("the balance is %d", e.balance) }
func (e overdrawn) RejectionCode() string  { return "insufficient_funds" }
func (e overdrawn) RejectionField() string { return "amount" }

// ExampleAsRejection shows what the runtime records for the errors a
// decide function may return.
func ExampleAsRejection() {
	for _, err := range []error{
		es.Reject(es.CodeNotFound, "", "no account a9"),
		fmt.Errorf("withdraw: %w", overdrawn{70}),
		errors.New("the disk is full"), // not the writer's fault
	} {
		r := es.AsRejection(err)
		fmt.Printf("code=%s field=%q message=%q\n", r.Code, r.Field, r.Message)
	}
	// Output:
	// code=not_found field="" message="no account a9"
	// code=insufficient_funds field="amount" message="withdraw: the balance is 70"
	// code=internal field="" message="the disk is full"
}
