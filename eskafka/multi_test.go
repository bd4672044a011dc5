package eskafka_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/store/memstore"
)

// waitFor polls cond until it holds or a minute passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two instances share the partitions; both know who owns each one; when
// one leaves, the other takes its partitions over, restores them from the
// changelog and serves every key.
//
// With lanes, each instance is several members of the group: the
// partitions are still shared between the instances, not between the
// members (three lanes each and three partitions would otherwise leave
// one instance with nothing).
func TestTwoInstances(t *testing.T) {
	for _, lanes := range []int{1, 3} {
		t.Run(fmt.Sprintf("lanes=%d", lanes), func(t *testing.T) { testTwoInstances(t, lanes) })
	}
}

func testTwoInstances(t *testing.T, lanes int) {
	cfg := newConfig(t)
	cfg.Lanes = lanes
	a := cfg
	a.InstanceID, a.AdvertisedURL, a.Store = "a", "http://a", memstore.New()
	b := cfg
	b.InstanceID, b.AdvertisedURL, b.Store = "b", "http://b", memstore.New()
	ea := start(t, a)
	eb := start(t, b)
	covered := func() bool {
		pa, pb := ea.proc.Partitions(), eb.proc.Partitions()
		oa, ob := ea.proc.Owners(), eb.proc.Owners()
		if len(pa)+len(pb) != partitions || len(pa) == 0 || len(pb) == 0 || !ea.proc.Ready() || !eb.proc.Ready() {
			return false
		}
		for p := range int32(partitions) {
			want := "http://a"
			if _, ok := pb[p]; ok {
				want = "http://b"
			}
			if oa[p] != want || ob[p] != want {
				return false
			}
		}
		return true
	}
	waitFor(t, "both instances to own partitions and agree on owners", covered)

	const n = 30
	for i := range n {
		if res := ea.do(open{key(i)}, eskafka.SendOptions{}); !res.Accepted() {
			t.Fatalf("open %d: %+v", i, res.Outcome)
		}
	}
	// Every key is served by exactly one instance; the other names it.
	for i := range n {
		_, errA := ea.proc.Get(key(i))
		_, errB := eb.proc.Get(key(i))
		switch {
		case errA == nil && errors.Is(errB, eskafka.ErrNotOwner):
			if eb.proc.Owner(key(i)) != "http://a" {
				t.Fatalf("b says %s is owned by %q", key(i), eb.proc.Owner(key(i)))
			}
		case errB == nil && errors.Is(errA, eskafka.ErrNotOwner):
			if ea.proc.Owner(key(i)) != "http://b" {
				t.Fatalf("a says %s is owned by %q", key(i), ea.proc.Owner(key(i)))
			}
		default:
			t.Fatalf("%s: a=%v b=%v", key(i), errA, errB)
		}
	}

	ea.stop()
	waitFor(t, "b to own and restore every partition", func() bool {
		return len(eb.proc.Partitions()) == partitions && eb.proc.Ready()
	})
	for i := range n {
		if c, err := eb.proc.Get(key(i)); err != nil || c.Version != 1 {
			t.Fatalf("after a left, b: %s = %+v, %v", key(i), c, err)
		}
	}
	if res := eb.do(add{key(1), 2}, eskafka.SendOptions{}); !res.Accepted() || res.State.Total != 2 {
		t.Fatalf("write after failover: %+v", res.Outcome)
	}
}

type nopTransform struct{}

func (nopTransform) Handle(*eskafka.Tx, *kgo.Record) error { return nil }

// A stage with two co-partitioned inputs gets partition p of both on the
// same member: two members never both hold partition p.
func TestCoPartitionedInputsMoveTogether(t *testing.T) {
	cfg := newConfig(t)
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	ensureTopics(t, cfg)
	spec := func() eskafka.StageSpec {
		return eskafka.StageSpec{Name: "two-inputs", Inputs: []string{topics.Events, topics.Results}, Transform: nopTransform{}}
	}
	var stages []*eskafka.Stage
	for _, id := range []string{"a", "b", "c"} {
		c := cfg
		c.InstanceID, c.AdvertisedURL, c.Store = id, "http://"+id, memstore.New()
		st := eskafka.NewStage(spec(), c)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = st.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		stages = append(stages, st)
	}
	waitFor(t, "three members to hold every partition once", func() bool {
		held := map[int32]int{}
		for _, st := range stages {
			if !st.Ready() {
				return false
			}
			for p := range st.Partitions() {
				held[p]++
			}
		}
		if len(held) != partitions {
			return false
		}
		for _, n := range held {
			if n != 1 {
				return false
			}
		}
		return true
	})
}
