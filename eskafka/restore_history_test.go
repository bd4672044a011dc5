package eskafka_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/store/memstore"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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

	// The topics deleted and created again (as on another cluster, or
	// a rebuilt one): they hold more records than the old store claims
	// to have read of each partition.
	deleteTopics(t, cfg.Brokers, cfg.Service+".")
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

// deleteTopics deletes every topic whose name starts with prefix and
// waits until the brokers no longer list them (Apache Kafka deletes
// asynchronously).
func deleteTopics(t *testing.T, brokers []string, prefix string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ours := func() []string {
		all, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range all.Names() {
			if strings.HasPrefix(n, prefix) {
				names = append(names, n)
			}
		}
		return names
	}
	names := ours()
	if len(names) == 0 {
		t.Fatalf("no topics named %s*", prefix)
	}
	if _, err := adm.DeleteTopics(ctx, names...); err != nil {
		t.Fatal(err)
	}
	for len(ours()) > 0 {
		if ctx.Err() != nil {
			t.Fatalf("topics %s* still listed after a minute", prefix)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
