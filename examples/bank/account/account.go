// Package account is the bank example's Account aggregate: its commands,
// events, state and rules. It is pure Go, with no I/O: Decide and Evolve
// are functions of their arguments, so they are tested without Kafka
// (account_test.go) and run by the runtime as they are (Aggregate).
//
// An account belongs to one customer; money is deposited and withdrawn in
// whole cents, and a withdrawal never takes the balance below zero: it is
// refused with the code CodeInsufficientFunds. An account is closed only
// when empty. Every event carries the customer and the balance after it, so
// that a read model can follow balances per customer from the events alone
// (package balance).
package account

import (
	"github.com/bookscatalog/catalog/es"
)

// Rejection codes of this domain, beside the runtime's (es.CodeNotFound,
// es.CodeAlreadyExists, es.CodeInvalid). The HTTP layer answers a code it
// does not know with 422 and the code in the problem's "code" member.
const (
	// CodeInsufficientFunds: a withdrawal larger than the balance.
	CodeInsufficientFunds = "insufficient_funds"
	// CodeNotEmpty: closing an account that still holds money.
	CodeNotEmpty = "balance_not_zero"
)

// Limits of the domain's values.
const (
	// MaxIDLen bounds account ids and customer ids.
	MaxIDLen = 64
	// MaxAmount bounds one deposit or withdrawal, in cents.
	MaxAmount = 1_000_000_000_00
	// MaxBalance bounds a balance, in cents, far below the range of
	// int64, so that no sum of balances a read model makes overflows.
	MaxBalance = 1_000_000_000_000_00
)

// State is an account as folded from its events. The zero State is an
// account that does not exist (never opened, or closed).
type State struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	// Balance is in cents, never negative.
	Balance int64 `json:"balance"`
	// Version counts the events applied since the account was opened.
	Version int64 `json:"version"`
}

// Exists reports whether the account is open.
func (s State) Exists() bool { return s.Version > 0 }

// Command is a request to change an account.
type Command interface {
	// AccountID is the key of the account the command is about.
	AccountID() string
	isCommand()
}

// OpenAccount opens an account for a customer under a new id.
type OpenAccount struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
}

// Deposit adds Amount cents to an account.
type Deposit struct {
	ID     string `json:"id"`
	Amount int64  `json:"amount"`
}

// Withdraw takes Amount cents from an account, if it holds them.
type Withdraw struct {
	ID     string `json:"id"`
	Amount int64  `json:"amount"`
}

// CloseAccount closes an empty account.
type CloseAccount struct {
	ID string `json:"id"`
}

// AccountID implements Command.
func (c OpenAccount) AccountID() string { return c.ID }

// AccountID implements Command.
func (c Deposit) AccountID() string { return c.ID }

// AccountID implements Command.
func (c Withdraw) AccountID() string { return c.ID }

// AccountID implements Command.
func (c CloseAccount) AccountID() string { return c.ID }

func (OpenAccount) isCommand()  {}
func (Deposit) isCommand()      {}
func (Withdraw) isCommand()     {}
func (CloseAccount) isCommand() {}

// Commands returns a zero value of every command type: the one list of
// them, from which the codecs take theirs. Its test (estest.AllListed)
// fails when a type implementing Command is missing.
func Commands() []Command {
	return []Command{OpenAccount{}, Deposit{}, Withdraw{}, CloseAccount{}}
}

// Event is a fact about an account. Every event names the account's
// customer, for the read models keyed by customer.
type Event interface {
	// CustomerID is the customer whose account the event is about.
	CustomerID() string
	isEvent()
}

// AccountOpened records a new, empty account.
type AccountOpened struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
}

// Deposited records money put in; Balance is the balance after it.
type Deposited struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Amount   int64  `json:"amount"`
	Balance  int64  `json:"balance"`
}

// Withdrawn records money taken out; Balance is the balance after it.
type Withdrawn struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Amount   int64  `json:"amount"`
	Balance  int64  `json:"balance"`
}

// AccountClosed records that an account is gone.
type AccountClosed struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
}

// CustomerID implements Event.
func (e AccountOpened) CustomerID() string { return e.Customer }

// CustomerID implements Event.
func (e Deposited) CustomerID() string { return e.Customer }

// CustomerID implements Event.
func (e Withdrawn) CustomerID() string { return e.Customer }

// CustomerID implements Event.
func (e AccountClosed) CustomerID() string { return e.Customer }

func (AccountOpened) isEvent() {}
func (Deposited) isEvent()     {}
func (Withdrawn) isEvent()     {}
func (AccountClosed) isEvent() {}

// Events returns a zero value of every event type: the one list of them
// (see Commands).
func Events() []Event {
	return []Event{AccountOpened{}, Deposited{}, Withdrawn{}, AccountClosed{}}
}

// Aggregate returns the Account aggregate as the runtime sees it: its name
// in topics and URLs ("accounts"), its pure functions, and how to key,
// version and tell the existence of its states.
func Aggregate() es.Aggregate[State, Command, Event] {
	return es.Aggregate[State, Command, Event]{
		Name:    "accounts",
		Decide:  Decide,
		Evolve:  Evolve,
		Key:     Command.AccountID,
		Version: func(s State) int64 { return s.Version },
		Exists:  State.Exists,
	}
}

// Decide returns the events that cmd causes on s, or an *es.Rejection.
func Decide(s State, cmd Command) ([]Event, error) {
	if cmd == nil {
		return nil, es.Reject(es.CodeInvalid, "type", "no command")
	}
	if err := ValidateID("id", cmd.AccountID()); err != nil {
		return nil, err
	}
	switch c := cmd.(type) {
	case OpenAccount:
		if err := ValidateID("customer", c.Customer); err != nil {
			return nil, err
		}
		if s.Exists() {
			return nil, es.Reject(es.CodeAlreadyExists, "", "account %q already exists", c.ID)
		}
		return []Event{AccountOpened(c)}, nil
	case Deposit:
		if err := validAmount(c.Amount); err != nil {
			return nil, err
		}
		if !s.Exists() {
			return nil, notFound(c.ID)
		}
		if s.Balance > MaxBalance-c.Amount {
			return nil, es.Reject(es.CodeInvalid, "amount", "the balance would exceed %d cents", int64(MaxBalance))
		}
		return []Event{Deposited{ID: c.ID, Customer: s.Customer, Amount: c.Amount, Balance: s.Balance + c.Amount}}, nil
	case Withdraw:
		if err := validAmount(c.Amount); err != nil {
			return nil, err
		}
		if !s.Exists() {
			return nil, notFound(c.ID)
		}
		if c.Amount > s.Balance {
			return nil, es.Reject(CodeInsufficientFunds, "amount", "account %q holds %d cents, less than the %d asked for", c.ID, s.Balance, c.Amount)
		}
		return []Event{Withdrawn{ID: c.ID, Customer: s.Customer, Amount: c.Amount, Balance: s.Balance - c.Amount}}, nil
	case CloseAccount:
		if !s.Exists() {
			return nil, notFound(c.ID)
		}
		if s.Balance != 0 {
			return nil, es.Reject(CodeNotEmpty, "", "account %q still holds %d cents; withdraw them first", c.ID, s.Balance)
		}
		return []Event{AccountClosed{ID: c.ID, Customer: s.Customer}}, nil
	default:
		return nil, es.Reject(es.CodeInvalid, "type", "unknown account command %T", cmd)
	}
}

// Evolve returns the state after ev. Closing returns the zero State, so a
// closed account is one that does not exist.
func Evolve(s State, ev Event) State {
	switch e := ev.(type) {
	case AccountOpened:
		return State{ID: e.ID, Customer: e.Customer, Version: s.Version + 1}
	case Deposited:
		s.Balance = e.Balance
		s.Version++
	case Withdrawn:
		s.Balance = e.Balance
		s.Version++
	case AccountClosed:
		return State{}
	}
	return s
}

// ValidateID checks the form of an account or customer id (field names it
// in the rejection): 1 to MaxIDLen lower-case letters, digits and hyphens,
// which random UUIDs are.
func ValidateID(field, id string) *es.Rejection {
	if id == "" || len(id) > MaxIDLen {
		return es.Reject(es.CodeInvalid, field, "must be 1 to %d characters", MaxIDLen)
	}
	for _, r := range id {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return es.Reject(es.CodeInvalid, field, "must hold only lower-case letters, digits and hyphens")
		}
	}
	return nil
}

func validAmount(n int64) error {
	if n < 1 || n > MaxAmount {
		return es.Reject(es.CodeInvalid, "amount", "must be from 1 to %d cents", int64(MaxAmount))
	}
	return nil
}

func notFound(id string) error {
	return es.Reject(es.CodeNotFound, "", "account %q not found", id)
}
