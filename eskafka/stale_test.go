package eskafka_test

import (
	"testing"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/store"
)

// A store that holds keys from other topics (a data directory kept while
// the service name, and so every topic, changed) does not answer for the
// topics the stage restores from: before, a counter "opened" under the old
// topics made opening it under the new ones "already_exists" (and a msgId
// processed under the old ones was answered from the old dedup entry,
// without events).
func TestStoreOfOtherTopicsIsDropped(t *testing.T) {
	cfg := newConfig(t)
	old, _, err := codecs.State.Encode(counter{ID: "c1", Total: 5, Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	var b store.Batch
	b.Put("s/c1", old)
	b.SetOffset("another-service.counters.changelog", 0, 4)
	if err := cfg.Store.Apply(&b); err != nil {
		t.Fatal(err)
	}
	e := start(t, cfg)
	e.waitReady()
	res := e.do(open{"c1"}, eskafka.SendOptions{})
	if !res.Accepted() || res.State.Version != 1 || res.State.Total != 0 {
		t.Fatalf("open c1 over a store of other topics: %+v, want accepted at version 1", res.Outcome)
	}
}
