package account_test

import (
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/es/estest"
	"github.com/bookscatalog/catalog/examples/bank/account"
)

type tcase = estest.Case[account.State, account.Command, account.Event]

var agg = estest.Aggregate[account.State, account.Command, account.Event]{Decide: account.Decide, Evolve: account.Evolve}

// opened and deposited are the usual history: an account of alice's,
// with 100 cents in it.
var (
	opened    = account.AccountOpened{ID: "a1", Customer: "alice"}
	deposited = account.Deposited{ID: "a1", Customer: "alice", Amount: 100, Balance: 100}
)

func wantState(want account.State) func(*testing.T, account.State) {
	return func(t *testing.T, s account.State) {
		t.Helper()
		if s != want {
			t.Fatalf("state = %+v, want %+v", s, want)
		}
	}
}

func TestOpenAccount(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "new", When: account.OpenAccount{ID: "a1", Customer: "alice"},
			Want:  []account.Event{opened},
			Check: wantState(account.State{ID: "a1", Customer: "alice", Version: 1})},
		{Name: "open already", Given: []account.Event{opened}, When: account.OpenAccount{ID: "a1", Customer: "bob"},
			WantCode: es.CodeAlreadyExists},
		{Name: "again after closing", Given: []account.Event{opened, account.AccountClosed{ID: "a1", Customer: "alice"}},
			When:  account.OpenAccount{ID: "a1", Customer: "bob"},
			Want:  []account.Event{account.AccountOpened{ID: "a1", Customer: "bob"}},
			Check: wantState(account.State{ID: "a1", Customer: "bob", Version: 1})},
		{Name: "no customer", When: account.OpenAccount{ID: "a1"}, WantCode: es.CodeInvalid, WantField: "customer"},
		{Name: "malformed customer", When: account.OpenAccount{ID: "a1", Customer: "Alice"}, WantCode: es.CodeInvalid, WantField: "customer"},
		{Name: "no id", When: account.OpenAccount{Customer: "alice"}, WantCode: es.CodeInvalid, WantField: "id"},
		{Name: "id with a slash", When: account.OpenAccount{ID: "a/1", Customer: "alice"}, WantCode: es.CodeInvalid, WantField: "id"},
		{Name: "id too long", When: account.OpenAccount{ID: strings.Repeat("a", account.MaxIDLen+1), Customer: "alice"},
			WantCode: es.CodeInvalid, WantField: "id"},
		{Name: "a UUID for id", When: account.OpenAccount{ID: "0b8e7c8e-4f4e-4a43-9d6a-2b1b5f0c9a11", Customer: "alice"},
			Want: []account.Event{account.AccountOpened{ID: "0b8e7c8e-4f4e-4a43-9d6a-2b1b5f0c9a11", Customer: "alice"}}},
	})
}

func TestDeposit(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "into an open account", Given: []account.Event{opened}, When: account.Deposit{ID: "a1", Amount: 100},
			Want:  []account.Event{deposited},
			Check: wantState(account.State{ID: "a1", Customer: "alice", Balance: 100, Version: 2})},
		{Name: "adds to the balance", Given: []account.Event{opened, deposited}, When: account.Deposit{ID: "a1", Amount: 5},
			Want:  []account.Event{account.Deposited{ID: "a1", Customer: "alice", Amount: 5, Balance: 105}},
			Check: wantState(account.State{ID: "a1", Customer: "alice", Balance: 105, Version: 3})},
		{Name: "into no account", When: account.Deposit{ID: "a1", Amount: 100}, WantCode: es.CodeNotFound},
		{Name: "into a closed account", Given: []account.Event{opened, account.AccountClosed{ID: "a1", Customer: "alice"}},
			When: account.Deposit{ID: "a1", Amount: 100}, WantCode: es.CodeNotFound},
		{Name: "nothing", Given: []account.Event{opened}, When: account.Deposit{ID: "a1"}, WantCode: es.CodeInvalid, WantField: "amount"},
		{Name: "a negative amount", Given: []account.Event{opened}, When: account.Deposit{ID: "a1", Amount: -5},
			WantCode: es.CodeInvalid, WantField: "amount"},
		{Name: "too much at once", Given: []account.Event{opened}, When: account.Deposit{ID: "a1", Amount: account.MaxAmount + 1},
			WantCode: es.CodeInvalid, WantField: "amount"},
		{Name: "beyond the largest balance",
			Given:    []account.Event{opened, account.Deposited{ID: "a1", Customer: "alice", Amount: 1, Balance: account.MaxBalance - 1}},
			When:     account.Deposit{ID: "a1", Amount: 2},
			WantCode: es.CodeInvalid, WantField: "amount"},
	})
}

func TestWithdraw(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "less than the balance", Given: []account.Event{opened, deposited}, When: account.Withdraw{ID: "a1", Amount: 30},
			Want:  []account.Event{account.Withdrawn{ID: "a1", Customer: "alice", Amount: 30, Balance: 70}},
			Check: wantState(account.State{ID: "a1", Customer: "alice", Balance: 70, Version: 3})},
		{Name: "the whole balance", Given: []account.Event{opened, deposited}, When: account.Withdraw{ID: "a1", Amount: 100},
			Want: []account.Event{account.Withdrawn{ID: "a1", Customer: "alice", Amount: 100, Balance: 0}}},
		{Name: "one cent more than the balance", Given: []account.Event{opened, deposited}, When: account.Withdraw{ID: "a1", Amount: 101},
			WantCode: account.CodeInsufficientFunds, WantField: "amount"},
		{Name: "from an empty account", Given: []account.Event{opened}, When: account.Withdraw{ID: "a1", Amount: 1},
			WantCode: account.CodeInsufficientFunds, WantField: "amount"},
		{Name: "from no account", When: account.Withdraw{ID: "a1", Amount: 1}, WantCode: es.CodeNotFound},
		{Name: "a negative amount", Given: []account.Event{opened, deposited}, When: account.Withdraw{ID: "a1", Amount: -1},
			WantCode: es.CodeInvalid, WantField: "amount"},
	})
}

func TestCloseAccount(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "empty", Given: []account.Event{opened}, When: account.CloseAccount{ID: "a1"},
			Want:  []account.Event{account.AccountClosed{ID: "a1", Customer: "alice"}},
			Check: wantState(account.State{})},
		{Name: "emptied", Given: []account.Event{opened, deposited, account.Withdrawn{ID: "a1", Customer: "alice", Amount: 100, Balance: 0}},
			When: account.CloseAccount{ID: "a1"},
			Want: []account.Event{account.AccountClosed{ID: "a1", Customer: "alice"}}},
		{Name: "holding money", Given: []account.Event{opened, deposited}, When: account.CloseAccount{ID: "a1"},
			WantCode: account.CodeNotEmpty},
		{Name: "twice", Given: []account.Event{opened, account.AccountClosed{ID: "a1", Customer: "alice"}},
			When: account.CloseAccount{ID: "a1"}, WantCode: es.CodeNotFound},
	})
}

// TestNeverOverdrawn drives one account with a long run of deposits and
// withdrawals, accepted or not, and checks after every step that the
// balance is what was accepted and never below zero.
func TestNeverOverdrawn(t *testing.T) {
	s := account.Evolve(account.State{}, opened)
	var want int64
	for i := range 500 {
		amount := int64(i*37%113 + 1)
		var cmd account.Command = account.Deposit{ID: "a1", Amount: amount}
		if i%3 != 0 {
			cmd = account.Withdraw{ID: "a1", Amount: amount}
		}
		events, err := account.Decide(s, cmd)
		switch {
		case err != nil:
			if w, ok := cmd.(account.Withdraw); !ok || w.Amount <= want || es.AsRejection(err).Code != account.CodeInsufficientFunds {
				t.Fatalf("step %d: %#v refused with %v at balance %d", i, cmd, err, want)
			}
		case i%3 == 0:
			want += amount
		default:
			want -= amount
		}
		for _, e := range events {
			s = account.Evolve(s, e)
		}
		if s.Balance != want || s.Balance < 0 {
			t.Fatalf("step %d: balance %d, want %d", i, s.Balance, want)
		}
	}
}

func TestEveryEventNamesItsCustomer(t *testing.T) {
	for _, e := range []account.Event{opened, deposited, account.Withdrawn{ID: "a1", Customer: "alice"}, account.AccountClosed{ID: "a1", Customer: "alice"}} {
		if e.CustomerID() != "alice" {
			t.Errorf("%T names customer %q", e, e.CustomerID())
		}
	}
}

func TestAggregate(t *testing.T) {
	a := account.Aggregate()
	s, events, rej := a.Handle(account.State{}, account.OpenAccount{ID: "a1", Customer: "alice"}, nil)
	if rej != nil || len(events) != 1 || !a.Exists(s) || a.Version(s) != 1 || a.Key(account.Deposit{ID: "a1"}) != "a1" {
		t.Fatalf("open: %+v %v %v", s, events, rej)
	}
	v := int64(0)
	if _, _, rej := a.Handle(s, account.Deposit{ID: "a1", Amount: 1}, &v); rej == nil || rej.Code != es.CodeVersionMismatch {
		t.Fatalf("deposit at a stale version: %v", rej)
	}
	if a.Name != "accounts" {
		t.Fatalf("name %q", a.Name)
	}
}

// TestAllListed fails when a command or event type is missing from
// Commands or Events, the lists the codecs are built from.
func TestAllListed(t *testing.T) {
	estest.AllListed(t, account.Commands())
	estest.AllListed(t, account.Events())
}
