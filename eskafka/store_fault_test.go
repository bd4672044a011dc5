package eskafka_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/store"
)

// unreadableStore fails the first fails reads of keys containing marker, as a
// damaged block of a store on disk answers them.
type unreadableStore struct {
	store.Store
	marker string
	fails  atomic.Int32
}

func (s *unreadableStore) Get(key string) ([]byte, bool, error) {
	if strings.Contains(key, s.marker) && s.fails.Add(-1) >= 0 {
		return nil, false, errors.New("pebble: corruption: block checksum mismatch")
	}
	return s.Store.Get(key)
}

// A store that cannot be read is the instance's fault, not the command's:
// the batch is retried until the store answers, and the command is never
// dead-lettered as failing (which it was after maxFailures reads).
func TestStoreReadErrorDoesNotPoisonTheCommand(t *testing.T) {
	cfg := newConfig(t)
	st := &unreadableStore{Store: cfg.Store, marker: "store-fault"}
	st.fails.Store(3) // maxFailures
	cfg.Store = st
	e := start(t, cfg)
	e.waitReady()
	res := e.do(open{"store-fault"}, eskafka.SendOptions{})
	if !res.Accepted() || res.State.Version != 1 {
		t.Fatalf("outcome %+v, rejection %+v", res.Outcome, res.Rejection)
	}
}

// applyFailingStore fails the first Apply of a batch that writes a key
// containing marker, as a store whose disk filled up would. It tells the
// test when that Apply starts and holds it until release is closed, so that
// reads can be made while the batch is committed on Kafka but not yet known
// to have missed the store.
type applyFailingStore struct {
	store.Store
	marker  string
	once    sync.Once
	failing chan struct{}
	release chan struct{}
}

func (s *applyFailingStore) Apply(b *store.Batch) error {
	for _, op := range b.Ops {
		if !strings.Contains(op.Key, s.marker) {
			continue
		}
		fail := false
		s.once.Do(func() { fail = true })
		if fail {
			close(s.failing)
			<-s.release
			return errors.New("pebble: write: no space left on device")
		}
	}
	return s.Store.Apply(b)
}

// A batch committed on Kafka that did not reach the store must not be read
// from the store as if it had: the reads waiting on it, and those after it,
// get "restoring" until the next session has restored the partition from
// its changelog; then they see the write. Before, a read waiting on the
// batch was released and answered from the store without it (not found
// here, a stale version in the chaos test), and so did every read until the
// session ended.
func TestBatchThatMissedTheStoreIsNotServed(t *testing.T) {
	const id = "apply-fault"
	cfg := newConfig(t)
	st := &applyFailingStore{Store: cfg.Store, marker: id, failing: make(chan struct{}), release: make(chan struct{})}
	cfg.Store = st
	e := start(t, cfg)
	e.waitReady()

	done := make(chan *eskafka.Result[counter, event], 1)
	go func() { done <- e.do(open{id}, eskafka.SendOptions{}) }()
	select {
	case <-st.failing:
	case <-time.After(60 * time.Second):
		t.Fatal("the batch never reached the store")
	}
	type read struct {
		state   counter
		err     error
		listed  bool
		partial bool
	}
	gets, lists := make(chan read, 1), make(chan read, 1)
	go func() {
		var r read
		r.state, r.err = e.proc.Get(id)
		gets <- r
	}()
	go func() {
		var r read
		var keys []string
		_, keys, r.partial, r.err = e.proc.List("", 100)
		r.listed = slices.Contains(keys, id)
		lists <- r
	}()
	// Let the read start waiting on the batch, then fail the batch's
	// write to the store.
	time.Sleep(100 * time.Millisecond)
	close(st.release)

	r := <-gets
	switch {
	case errors.Is(r.err, eskafka.ErrRestoring):
	case r.err != nil:
		t.Fatalf("read during the failed store write: %v", r.err)
	case r.state.Version != 1:
		t.Fatalf("read during the failed store write answered version %d, want restoring or version 1", r.state.Version)
	}
	if r = <-lists; r.err != nil {
		t.Fatalf("list during the failed store write: %v", r.err)
	}
	if !r.listed && !r.partial {
		t.Fatal("list during the failed store write left the committed key out without saying it is partial")
	}

	res := <-done
	if !res.Accepted() || res.State.Version != 1 {
		t.Fatalf("outcome %+v, rejection %+v", res.Outcome, res.Rejection)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := e.proc.Get(id)
		if err == nil && s.Version == 1 {
			break
		}
		if err != nil && !errors.Is(err, eskafka.ErrRestoring) {
			t.Fatalf("read after the session restored: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restored within 60s: %+v, %v", s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
