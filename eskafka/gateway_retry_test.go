package eskafka_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/memstore"
)

// flakyStore fails reads of one key while armed, a given number of times
// (a transient store error, such as an I/O error).
type flakyStore struct {
	store.Store
	key   string
	mu    sync.Mutex
	fails int
}

func (s *flakyStore) Get(key string) ([]byte, bool, error) {
	s.mu.Lock()
	if key == s.key && s.fails > 0 {
		s.fails--
		s.mu.Unlock()
		// A fault the stage takes for the record's: it is quarantined
		// at once. (A read error is the instance's: the stage retries
		// the record until the store answers.)
		panic("injected transient fault")
	}
	s.mu.Unlock()
	return s.Store.Get(key)
}

func (s *flakyStore) arm(n int) { s.mu.Lock(); s.fails = n; s.mu.Unlock() }

// A quarantined command's outcome carries no fingerprint. An idempotent
// command that failed transiently (quarantined: HTTP 500) and is then
// retried with the same Idempotency-Key and body is applied by the retry,
// and the retry is answered by its own outcome. Before, an outcome without
// a fingerprint answered any later wait on its msgId from the cache: the
// retry got the first attempt's 500, "dead-lettered", for a write that was
// applied.
func TestRetryAfterQuarantineIsAnsweredByItsOwnOutcome(t *testing.T) {
	cfg := newConfig(t)
	fs := &flakyStore{Store: memstore.New(), key: "s/q"}
	cfg.Store = fs
	e := start(t, cfg)
	e.do(open{"q"}, eskafka.SendOptions{})
	// Another key's batch since: with overlapping transactions, a batch
	// reads the one before it from memory, not from the store.
	e.do(open{"r"}, eskafka.SendOptions{})

	fs.arm(1) // the record is quarantined
	msg := ids.New()
	opt := eskafka.SendOptions{MsgID: msg, Idempotent: true}
	first := e.do(add{"q", 5}, opt)
	if first.Accepted() || first.Rejection.Code != es.CodeInternal {
		t.Fatalf("first attempt: %+v", first.Outcome)
	}
	fs.arm(0) // the store is fine again
	t.Logf("first attempt: %s %s", first.Rejection.Code, first.Rejection.Message)

	retry := e.do(add{"q", 5}, opt) // the client retries, same key, same body
	waitFor(t, "the retry to be processed", func() bool {
		st, err := e.proc.Get("q")
		return err == nil && st.Total == 5
	})
	if !retry.Accepted() {
		t.Fatalf("the retry was applied (total 5), but its caller was answered %s %s: %s (the first attempt's cached outcome)",
			retry.Status, retry.Rejection.Code, retry.Rejection.Message)
	}
}

// An idempotency_key_reused rejection is a second outcome under the msgId
// of a command that was applied: it answers the command it refuses, and
// the outcome remembered for the msgId stays the first command's. Before,
// it replaced it: GET /{name}/commands/{msgId} (where a 504 sends the
// first caller) then said "rejected" for the command that was applied.
func TestReusedKeyRejectionLeavesTheAppliedOutcome(t *testing.T) {
	e := start(t, newConfig(t))
	e.do(open{"r"}, eskafka.SendOptions{})
	msg := ids.New()
	opt := eskafka.SendOptions{MsgID: msg, Idempotent: true}
	if first := e.do(add{"r", 5}, opt); !first.Accepted() {
		t.Fatalf("first: %+v", first.Outcome)
	}
	if other := e.do(add{"r", 7}, opt); other.Accepted() || other.Rejection.Code != es.CodeIdempotencyKeyReused {
		t.Fatalf("reuse: %+v", other.Outcome)
	}
	got, ok, err := e.gw.Lookup(msg)
	if err != nil || !ok {
		t.Fatalf("lookup: %v %v", ok, err)
	}
	if st, _ := e.proc.Get("r"); st.Total != 5 {
		t.Fatalf("state %+v", st)
	}
	if !got.Accepted() {
		t.Fatalf("the command of msgId %s was applied (total 5), but its outcome now reads %s %s", msg, got.Status, got.Rejection.Code)
	}
}

// Two callers send different commands under one idempotency key, and both
// wait at once: each is answered for its own command. Before, the follower
// kept one expected fingerprint per msgId, the second caller's, so the
// first caller (whose command was applied) was answered with the second's
// idempotency_key_reused rejection; Await now takes what Send returned.
func TestReusedKeyInFlightAnswersEachCaller(t *testing.T) {
	e := start(t, newConfig(t))
	e.do(open{"f"}, eskafka.SendOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opt := eskafka.SendOptions{MsgID: ids.New(), Idempotent: true}
	first, err := e.gw.Send(ctx, add{"f", 5}, opt)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.gw.Send(ctx, add{"f", 7}, opt)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		res *eskafka.Result[counter, event]
		err error
	}
	answers := [2]chan answer{make(chan answer, 1), make(chan answer, 1)}
	for i, s := range []eskafka.Sent{first, second} {
		go func() {
			res, err := e.gw.Await(ctx, s)
			answers[i] <- answer{res, err}
		}()
	}
	a := <-answers[0]
	if a.err != nil || !a.res.Accepted() || a.res.State.Total != 5 {
		t.Fatalf("the first caller, whose command was applied: %+v %v", a.res, a.err)
	}
	b := <-answers[1]
	if b.err != nil || b.res.Accepted() || b.res.Rejection.Code != es.CodeIdempotencyKeyReused {
		t.Fatalf("the second caller: %+v %v", b.res, b.err)
	}
	if got, err := e.gw.Await(ctx, eskafka.Sent{MsgID: opt.MsgID}); err != nil || !got.Accepted() {
		t.Fatalf("any outcome of the msgId: %+v %v", got, err)
	}
}

// Two callers send the same command under a key already used for another,
// and their refusals arrive before either waits: each is answered. Before,
// the first to wait took the one refusal kept for them, and the second
// waited for one that had come already, until its deadline (a 504 where
// 422 idempotency_key_reused was due; seen in TestOneIdempotencyKeyAtOnceOnTwoInstances).
func TestReusedKeyRefusalAnswersEveryCallerOfThatCommand(t *testing.T) {
	e := start(t, newConfig(t))
	e.do(open{"g"}, eskafka.SendOptions{})
	opt := eskafka.SendOptions{MsgID: ids.New(), Idempotent: true}
	if first := e.do(add{"g", 5}, opt); !first.Accepted() {
		t.Fatalf("first: %+v", first.Outcome)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sent [2]eskafka.Sent
	for i := range sent {
		s, err := e.gw.Send(ctx, add{"g", 7}, opt)
		if err != nil {
			t.Fatal(err)
		}
		sent[i] = s
	}
	// A later command of the same key: once its outcome is in, both
	// refusals are too (one partition, in order), with nobody waiting.
	e.do(add{"g", 1}, eskafka.SendOptions{})
	for i, s := range sent {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := e.gw.Await(wctx, s)
		wcancel()
		if err != nil || res.Accepted() || res.Rejection.Code != es.CodeIdempotencyKeyReused {
			t.Fatalf("caller %d: %+v %v, want idempotency_key_reused", i, res, err)
		}
	}
}
