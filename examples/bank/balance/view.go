// Package balance is the bank example's read model: the balance of each
// customer, summed over the customer's open accounts, kept from the
// accounts' events.
//
// Account events are keyed by account, and the model is keyed by customer,
// so it is built in two stages, exactly once each: "route" reads the
// events and sends each account's new balance (a Change) to a repartition
// topic keyed by customer; "view" folds those changes into one View per
// customer, in a table of its own (a compacted changelog topic, restored
// into the local store). Every event carries its customer and the balance
// after it, so route needs no state, and applying a change twice leaves
// the view as it was.
//
// This file is the model's pure logic; stages.go runs it on Kafka.
package balance

import (
	"github.com/bookscatalog/catalog/examples/bank/account"
)

// Change is an account's balance as of one of its events, sent to the
// account's customer: the balance, or that the account is closed.
type Change struct {
	Account string `json:"account"`
	Balance int64  `json:"balance"`
	Closed  bool   `json:"closed,omitempty"`
}

// View is one customer's balance: the sum of the balances of the
// customer's open accounts, and those balances.
type View struct {
	Customer string `json:"customer"`
	// Balance is the sum of Accounts, in cents.
	Balance int64 `json:"balance"`
	// Accounts maps each open account's id to its balance, in cents.
	Accounts map[string]int64 `json:"accounts"`
}

// Empty reports whether the customer has no open account: such a view is
// deleted rather than kept.
func (v View) Empty() bool { return len(v.Accounts) == 0 }

// ChangeOf returns the change an account event causes in its customer's
// view, and the customer.
func ChangeOf(ev account.Event) (customer string, c Change) {
	switch e := ev.(type) {
	case account.AccountOpened:
		c = Change{Account: e.ID}
	case account.Deposited:
		c = Change{Account: e.ID, Balance: e.Balance}
	case account.Withdrawn:
		c = Change{Account: e.ID, Balance: e.Balance}
	case account.AccountClosed:
		c = Change{Account: e.ID, Closed: true}
	}
	return ev.CustomerID(), c
}

// Apply returns the view of customer after c. It does not modify v.
func Apply(v View, customer string, c Change) View {
	accounts := make(map[string]int64, len(v.Accounts)+1)
	for id, b := range v.Accounts {
		accounts[id] = b
	}
	if c.Closed {
		delete(accounts, c.Account)
	} else {
		accounts[c.Account] = c.Balance
	}
	// The sum is made again from the balances, never adjusted by a
	// difference: a change seen twice cannot count twice.
	var sum int64
	for _, b := range accounts {
		sum += b
	}
	return View{Customer: customer, Balance: sum, Accounts: accounts}
}
