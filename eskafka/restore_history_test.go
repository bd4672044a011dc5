package eskafka_test

import (
	"errors"
	"testing"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/store/memstore"
)

// A store kept from another history of the same topics (the cluster was
// rebuilt, or DATA_DIR was pointed at another cluster with the same
// SERVICE_NAME) whose offsets are behind the new topics' ends is rebuilt
// too: its states and msgIds never existed in the history it now serves.
func TestRestoreStoreFromAnotherHistoryBehindTopic(t *testing.T) {
	cfg := newConfig(t)
	e := start(t, cfg)
	if res := e.do(open{"ghost"}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open ghost: %+v", res.Outcome)
	}
	e.stop()
	old := cfg.Store.(*memstore.Store).Clone()

	// Another cluster, the same service: its topics hold more records
	// than the old store claims to have read of each partition.
	cfg.Brokers = kafkatest.Brokers(t)
	cfg.Store = memstore.New()
	e2 := start(t, cfg)
	for i := range 30 {
		if res := e2.do(open{key(i)}, eskafka.SendOptions{}); !res.Accepted() {
			t.Fatalf("open %s: %+v", key(i), res.Outcome)
		}
	}
	e2.stop()

	cfg.Store = old
	e3 := start(t, cfg)
	e3.waitReady()
	if c, err := e3.proc.Get("ghost"); !errors.Is(err, eskafka.ErrNotFound) {
		t.Fatalf("state from another history served: %+v, %v", c, err)
	}
	if c, err := e3.proc.Get(key(1)); err != nil || c.Version != 1 {
		t.Fatalf("%s after restore: %+v, %v", key(1), c, err)
	}
	if res := e3.do(open{"ghost"}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open ghost in the new history: %+v", res.Outcome)
	}
}
