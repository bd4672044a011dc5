package balance_test

import (
	"maps"
	"testing"

	"github.com/bookscatalog/catalog/examples/bank/account"
	"github.com/bookscatalog/catalog/examples/bank/balance"
)

// fold applies the changes of events, in order, as the two stages do.
func fold(t *testing.T, events ...account.Event) map[string]balance.View {
	t.Helper()
	views := map[string]balance.View{}
	for _, ev := range events {
		customer, c := balance.ChangeOf(ev)
		v := balance.Apply(views[customer], customer, c)
		if v.Empty() {
			delete(views, customer)
			continue
		}
		views[customer] = v
	}
	return views
}

func TestSumsTheAccountsOfEachCustomer(t *testing.T) {
	views := fold(t,
		account.AccountOpened{ID: "a1", Customer: "alice"},
		account.AccountOpened{ID: "a2", Customer: "alice"},
		account.AccountOpened{ID: "b1", Customer: "bob"},
		account.Deposited{ID: "a1", Customer: "alice", Amount: 100, Balance: 100},
		account.Deposited{ID: "a2", Customer: "alice", Amount: 50, Balance: 50},
		account.Deposited{ID: "b1", Customer: "bob", Amount: 7, Balance: 7},
		account.Withdrawn{ID: "a1", Customer: "alice", Amount: 30, Balance: 70},
	)
	alice := views["alice"]
	if alice.Customer != "alice" || alice.Balance != 120 || !maps.Equal(alice.Accounts, map[string]int64{"a1": 70, "a2": 50}) {
		t.Fatalf("alice: %+v", alice)
	}
	if bob := views["bob"]; bob.Balance != 7 || len(bob.Accounts) != 1 {
		t.Fatalf("bob: %+v", bob)
	}
}

func TestAClosedAccountLeavesTheSum(t *testing.T) {
	views := fold(t,
		account.AccountOpened{ID: "a1", Customer: "alice"},
		account.AccountOpened{ID: "a2", Customer: "alice"},
		account.Deposited{ID: "a1", Customer: "alice", Amount: 100, Balance: 100},
		account.AccountClosed{ID: "a2", Customer: "alice"},
	)
	if alice := views["alice"]; alice.Balance != 100 || !maps.Equal(alice.Accounts, map[string]int64{"a1": 100}) {
		t.Fatalf("alice: %+v", alice)
	}
	views = fold(t, account.AccountOpened{ID: "a1", Customer: "alice"}, account.AccountClosed{ID: "a1", Customer: "alice"})
	if v, ok := views["alice"]; ok {
		t.Fatalf("a customer without accounts kept a view: %+v", v)
	}
}

func TestAChangeSeenTwiceCountsOnce(t *testing.T) {
	dep := account.Deposited{ID: "a1", Customer: "alice", Amount: 100, Balance: 100}
	views := fold(t, account.AccountOpened{ID: "a1", Customer: "alice"}, dep, dep)
	if got := views["alice"].Balance; got != 100 {
		t.Fatalf("balance %d after the same deposit twice, want 100", got)
	}
}

func TestApplyLeavesItsInputAlone(t *testing.T) {
	v := balance.Apply(balance.View{}, "alice", balance.Change{Account: "a1", Balance: 5})
	_ = balance.Apply(v, "alice", balance.Change{Account: "a1", Balance: 9})
	if v.Accounts["a1"] != 5 || v.Balance != 5 {
		t.Fatalf("Apply changed the view it was given: %+v", v)
	}
}
