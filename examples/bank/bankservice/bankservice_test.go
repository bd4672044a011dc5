package bankservice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/examples/bank/account"
	"github.com/bookscatalog/catalog/examples/bank/balance"
	"github.com/bookscatalog/catalog/examples/bank/bankservice"
	"github.com/bookscatalog/catalog/httpapi"
	"github.com/bookscatalog/catalog/kafkatest"
)

// deadline bounds every wait of these tests: generous, for a loaded CI
// machine running the suite with -race; the tests never assert on time.
const deadline = 2 * time.Minute

// startBank runs a bank on the test's broker (an in-process kfake one, or
// KAFKA_BROKERS) behind a real HTTP server, until the test ends, and
// returns the server's URL once the bank is ready.
func startBank(t *testing.T) string {
	t.Helper()
	base, _ := runBank(t, kafkatest.Brokers(t), kafkatest.Service(t))
	return base
}

// runBank runs a bank of service on brokers, with stores in memory, and
// returns its URL once it is ready, and a function that stops it (also
// called when the test ends).
func runBank(t *testing.T, brokers []string, service string) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	bank, err := bankservice.New(ctx, bankservice.Config{
		App: eskafka.AppConfig{
			Config: eskafka.Config{
				Brokers: brokers, Service: service, InstanceID: "i1", Partitions: 3,
				Logger: slog.New(slog.DiscardHandler),
			},
			ReplicationFactor: kafkatest.ReplicationFactor(t, brokers),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancelRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bank.Run(runCtx) }()
	srv := httptest.NewServer(bank.Handler())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Close()
			cancelRun()
			if err := <-done; err != nil {
				t.Errorf("the bank stopped with %v", err)
			}
			bank.Close()
		})
	}
	t.Cleanup(stop)
	eventually(t, "the bank is ready", func() (bool, string) {
		status, body := do(t, srv.URL, "GET", "/readyz", "")
		return status == http.StatusOK, body
	})
	return srv.URL, stop
}

// do sends a request with a JSON body (none if empty) and returns the
// status and body of the answer.
func do(t *testing.T, base, method, path, body string) (int, string) {
	t.Helper()
	status, _, b := doHeaders(t, base, method, path, body)
	return status, b
}

func doHeaders(t *testing.T, base, method, path, body string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// must sends a request, fails the test unless it is answered with want,
// and decodes the answer into v (when not nil).
func must(t *testing.T, base, method, path, body string, want int, v any) {
	t.Helper()
	status, b := do(t, base, method, path, body)
	if status != want {
		t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, status, b, want)
	}
	if v != nil {
		if err := json.NewDecoder(bytes.NewReader([]byte(b))).Decode(v); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// eventually polls cond until it holds, failing the test with cond's last
// word after deadline: the read model follows the writes, a little later.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: still not so after %s; last: %s", what, deadline, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// balanceIs polls the customer's balance until it is want, with the
// accounts and their balances of accounts.
func balanceIs(t *testing.T, base, customer string, want int64, accounts map[string]int64) {
	t.Helper()
	eventually(t, customer+"'s balance", func() (bool, string) {
		status, body := do(t, base, "GET", "/customers/"+customer+"/balance", "")
		var v balance.View
		if status != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil {
			return false, body
		}
		return v.Customer == customer && v.Balance == want && maps.Equal(v.Accounts, accounts), body
	})
}

// TestBank goes through the whole API on Kafka: accounts opened,
// deposits, a withdrawal refused for want of funds, one accepted, and the
// customers' balances summed by the read model over their accounts.
func TestBank(t *testing.T) {
	base := startBank(t)

	// Two accounts for alice, one with the id she chose and one with an
	// id the service made up; one for bob.
	var a1 account.State
	status, h, body := doHeaders(t, base, "POST", "/accounts", `{"id":"a1","customer":"alice"}`)
	if status != http.StatusCreated || h.Get("Location") != "/accounts/a1" || json.Unmarshal([]byte(body), &a1) != nil || a1 != (account.State{ID: "a1", Customer: "alice", Version: 1}) {
		t.Fatalf("open a1: %d %s %s", status, h.Get("Location"), body)
	}
	status, h, body = doHeaders(t, base, "POST", "/accounts", `{"customer":"alice"}`)
	a2, ok := strings.CutPrefix(h.Get("Location"), "/accounts/")
	if status != http.StatusCreated || !ok || account.ValidateID("id", a2) != nil {
		t.Fatalf("open an account with an id made up: %d %s %s", status, h.Get("Location"), body)
	}
	must(t, base, "POST", "/accounts", `{"id":"b1","customer":"bob"}`, http.StatusCreated, nil)
	must(t, base, "POST", "/accounts", `{"id":"a1","customer":"carol"}`, http.StatusConflict, nil)

	var s account.State
	must(t, base, "POST", "/accounts/a1/deposits", `{"amount":100}`, http.StatusOK, &s)
	if s.Balance != 100 {
		t.Fatalf("after depositing 100: %+v", s)
	}
	must(t, base, "POST", "/accounts/"+a2+"/deposits", `{"amount":50}`, http.StatusOK, nil)
	must(t, base, "POST", "/accounts/b1/deposits", `{"amount":7}`, http.StatusOK, nil)

	// Never overdrawn: more than the balance is refused with the
	// domain's own code, and the balance stays.
	var p httpapi.Problem
	must(t, base, "POST", "/accounts/a1/withdrawals", `{"amount":101}`, http.StatusUnprocessableEntity, &p)
	if p.Code != account.CodeInsufficientFunds || p.Field != "amount" {
		t.Fatalf("withdrawing too much: %+v", p)
	}
	must(t, base, "POST", "/accounts/a1/withdrawals", `{"amount":30}`, http.StatusOK, &s)
	if s.Balance != 70 || s.Version != 3 {
		t.Fatalf("after withdrawing 30 of 100: %+v", s)
	}
	must(t, base, "GET", "/accounts/a1", "", http.StatusOK, &s)
	if s.Balance != 70 {
		t.Fatalf("a1 read back: %+v", s)
	}

	// The read model: each customer's balance, the sum over their
	// accounts.
	balanceIs(t, base, "alice", 120, map[string]int64{"a1": 70, a2: 50})
	balanceIs(t, base, "bob", 7, map[string]int64{"b1": 7})

	// An account closes only when empty, and then leaves the sum.
	must(t, base, "DELETE", "/accounts/"+a2, "", http.StatusUnprocessableEntity, &p)
	if p.Code != account.CodeNotEmpty {
		t.Fatalf("closing an account with money in it: %+v", p)
	}
	must(t, base, "POST", "/accounts/"+a2+"/withdrawals", `{"amount":50}`, http.StatusOK, nil)
	must(t, base, "DELETE", "/accounts/"+a2, "", http.StatusNoContent, nil)
	must(t, base, "GET", "/accounts/"+a2, "", http.StatusNotFound, nil)
	balanceIs(t, base, "alice", 70, map[string]int64{"a1": 70})

	// Bob's last account closed: bob has no balance any more.
	must(t, base, "POST", "/accounts/b1/withdrawals", `{"amount":7}`, http.StatusOK, nil)
	must(t, base, "DELETE", "/accounts/b1", "", http.StatusNoContent, nil)
	eventually(t, "bob's balance is gone", func() (bool, string) {
		status, body := do(t, base, "GET", "/customers/bob/balance", "")
		return status == http.StatusNotFound, body
	})
}

// TestBankRefusals checks the answers to requests the bank refuses before
// or without changing anything.
func TestBankRefusals(t *testing.T) {
	base := startBank(t)
	must(t, base, "POST", "/accounts", `{"id":"a1","customer":"alice"}`, http.StatusCreated, nil)
	for _, c := range []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"POST", "/accounts", `{"id":"a2"}`, http.StatusUnprocessableEntity, "", "customer"},
		{"POST", "/accounts", `{"id":"A2","customer":"alice"}`, http.StatusUnprocessableEntity, "invalid", "id"},
		{"POST", "/accounts/a1/deposits", `{}`, http.StatusUnprocessableEntity, "", "amount"},
		{"POST", "/accounts/a1/deposits", `{"amount":0}`, http.StatusUnprocessableEntity, "invalid", "amount"},
		{"POST", "/accounts/a1/deposits", `{"amount":1.5}`, http.StatusUnprocessableEntity, "", "amount"},
		{"POST", "/accounts/a1/withdrawals", `{"amount":1}`, http.StatusUnprocessableEntity, account.CodeInsufficientFunds, "amount"},
		{"POST", "/accounts/nobody/deposits", `{"amount":1}`, http.StatusNotFound, "not_found", ""},
		{"GET", "/customers/Alice!/balance", "", http.StatusBadRequest, "", "customer"},
		{"GET", "/customers/carol/balance", "", http.StatusNotFound, "", ""},
	} {
		var p httpapi.Problem
		must(t, base, c.method, c.path, c.body, c.status, &p)
		if p.Code != c.code || p.Field != c.field {
			t.Errorf("%s %s %s: %+v, want code %q field %q", c.method, c.path, c.body, p, c.code, c.field)
		}
	}
}

// TestBankRestores stops a bank and starts another with empty stores on
// the same topics: the accounts and the balances come back, restored from
// their changelogs, and the new bank goes on from there.
func TestBankRestores(t *testing.T) {
	brokers, service := kafkatest.Brokers(t), kafkatest.Service(t)
	base, stop := runBank(t, brokers, service)
	must(t, base, "POST", "/accounts", `{"id":"a1","customer":"alice"}`, http.StatusCreated, nil)
	must(t, base, "POST", "/accounts", `{"id":"a2","customer":"alice"}`, http.StatusCreated, nil)
	must(t, base, "POST", "/accounts/a1/deposits", `{"amount":100}`, http.StatusOK, nil)
	must(t, base, "POST", "/accounts/a2/deposits", `{"amount":20}`, http.StatusOK, nil)
	balanceIs(t, base, "alice", 120, map[string]int64{"a1": 100, "a2": 20})
	stop()

	base, _ = runBank(t, brokers, service)
	var s account.State
	must(t, base, "GET", "/accounts/a1", "", http.StatusOK, &s)
	if s != (account.State{ID: "a1", Customer: "alice", Balance: 100, Version: 2}) {
		t.Fatalf("a1 after a restart: %+v", s)
	}
	balanceIs(t, base, "alice", 120, map[string]int64{"a1": 100, "a2": 20})
	var p httpapi.Problem
	must(t, base, "POST", "/accounts/a2/withdrawals", `{"amount":21}`, http.StatusUnprocessableEntity, &p)
	if p.Code != account.CodeInsufficientFunds {
		t.Fatalf("withdrawing too much after a restart: %+v", p)
	}
	must(t, base, "POST", "/accounts/a2/withdrawals", `{"amount":20}`, http.StatusOK, nil)
	balanceIs(t, base, "alice", 100, map[string]int64{"a1": 100, "a2": 0})
}
