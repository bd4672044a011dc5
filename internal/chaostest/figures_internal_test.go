package chaostest

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFiguresCountWaitsFromTheInjection: a write that began before the
// fault was injected (pending on the previous fault's tail) waited for
// this fault from the injection only.
func TestFiguresCountWaitsFromTheInjection(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	f := &fault{start: t0, end: t0.Add(20 * time.Second), healthy: t0.Add(30 * time.Second), affected: []int32{1}}
	a := &authorRun{code: "a", ops: []*writeOp{
		// began 6s before the injection, acknowledged 10s after it
		{op: "create-author", key: "a", partition: 1, acked: true, attempts: 3, first: t0.Add(-6 * time.Second), ackedAt: t0.Add(10 * time.Second)},
		// began 2s after, acknowledged 5s after
		{op: "update-author", key: "a", partition: 2, acked: true, attempts: 1, first: t0.Add(2 * time.Second), ackedAt: t0.Add(5 * time.Second)},
		// acknowledged before the injection: not this fault's
		{op: "delete-author", key: "a", partition: 3, acked: true, attempts: 1, first: t0.Add(-9 * time.Second), ackedAt: t0.Add(-time.Second)},
	}}
	b := &bookRun{id: "b", ops: []*writeOp{
		// never acknowledged: waited until full health
		{op: "create-book", key: "b", partition: 4, attempts: 9, first: t0.Add(25 * time.Second)},
	}}
	fig := compute(f, &load{authors: []*authorRun{a}, books: []*bookRun{b}})
	want := map[int32]float64{1: 10, 2: 3, 4: 5}
	for p, w := range want {
		if got := fig.waitByPartition[p]; got != w {
			t.Errorf("partition %d: longest wait %vs, want %vs", p, got, w)
		}
	}
	if len(fig.waitByPartition) != len(want) {
		t.Errorf("waits on partitions %v, want only %v", fig.waitByPartition, want)
	}
	if fig.maxWait != 10*time.Second || fig.affectedMaxWait != 10*time.Second {
		t.Errorf("longest wait %v, on the affected partitions %v; want 10s and 10s", fig.maxWait, fig.affectedMaxWait)
	}
	if !strings.HasPrefix(fig.worst, "create-author of a (partition 1) from -6.0s to +10.0s") {
		t.Errorf("worst write: %s", fig.worst)
	}
}

// TestHealthKinds: a book's creation also shows that its author's partition
// answers the check of the author.
func TestHealthKinds(t *testing.T) {
	for _, c := range []struct {
		w    writeOp
		want []string
	}{
		{writeOp{op: "create-author", partition: 2}, []string{"author on 2"}},
		{writeOp{op: "delete-author", partition: 0}, []string{"author on 0"}},
		{writeOp{op: "rename-book", partition: 5}, []string{"book on 5"}},
		{writeOp{op: "create-book", partition: 5, authorPartition: 1}, []string{"book on 5", "author check on 1"}},
	} {
		if got := healthKinds(&c.w); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.w.op, got, c.want)
		}
	}
}

// A fenced transaction's producer and epoch may have committed earlier
// transactions (transaction version 1 keeps the epoch for a session): only
// records from where the open one started count against it.
func TestFencedTransactionOwnsOnlyRecordsFromItsStart(t *testing.T) {
	ft := fencedTxn{producer: 7, epoch: 2, from: map[string]map[int32]int64{"events": {0: 100}}}
	for _, c := range []struct {
		r    record
		want bool
	}{
		{record{topic: "events", partition: 0, offset: 99, producer: 7, epoch: 2}, false},
		{record{topic: "events", partition: 0, offset: 100, producer: 7, epoch: 2}, true},
		{record{topic: "events", partition: 0, offset: 150, producer: 7, epoch: 3}, false},
		{record{topic: "events", partition: 0, offset: 150, producer: 8, epoch: 2}, false},
		// No bound known: checked from the start.
		{record{topic: "events", partition: 1, offset: 0, producer: 7, epoch: 2}, true},
		{record{topic: "results", partition: 0, offset: 0, producer: 7, epoch: 2}, true},
	} {
		if got := ft.wrote(c.r); got != c.want {
			t.Errorf("wrote(%s/%d@%d producer %d epoch %d) = %v, want %v", c.r.topic, c.r.partition, c.r.offset, c.r.producer, c.r.epoch, got, c.want)
		}
	}
}
