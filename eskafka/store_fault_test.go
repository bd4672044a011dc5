package eskafka_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

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
