package crashtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/kafkatest"
)

// TestCrashRestart kills the service (a separate process) with SIGKILL in
// the middle of a stream of writes from concurrent clients, starts it again
// on the same data directory and broker, and checks that
//
//   - every write answered 2xx reads back, and nothing else does: an author
//     shows the state after its acked writes, or after those and the one
//     write whose answer the crash cut off;
//   - the restarted service accepts a new write on every partition (within
//     writeStallBound; how long it took is logged), and a retry with the
//     same Idempotency-Key of a write cut off by the crash succeeds with the
//     answer the model expects;
//   - the events topic holds each applied event exactly once: no
//     (msgId, version) pair twice, and per key exactly the events of its
//     applied writes, in order, with their versions;
//   - the latest changelog record of each key is the fold of its events.
//
// It runs twice, in parallel: restarting with the local stores as the
// killed process left them, with two lanes per stage (STAGE_LANES: two
// transactions in flight, two transactional ids to fence at the restart),
// and with them deleted (rebuilt from the changelogs), with one lane.
func TestCrashRestart(t *testing.T) {
	bin := buildCatalog(t)
	for _, v := range []struct {
		name       string
		dropStores bool
		lanes      int
	}{
		{"same-stores-2-lanes", false, 2},
		{"stores-deleted", true, 1},
	} {
		// Each variant has its own broker (with kfake), started here
		// one after the other: kafkatest.Brokers reserves a free port
		// and lets it go before kfake binds it, and two of them
		// starting at once collide now and then.
		brokers := kafkatest.Brokers(t)
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			crashAndRestart(t, bin, brokers, v.dropStores, v.lanes)
		})
	}
}

// partitions is the partition count of the service's topics (PARTITIONS).
const partitions = 3

// writeStallBound bounds how long after a restart the service may take to
// accept a write on every partition. The restarted instance fences the
// killed one's transactions as it starts (same transactional ids), so this
// is a regression bound, far below the 20s transaction timeout plus the
// readers' 5s wait that a stall would show.
const writeStallBound = 15 * time.Second

func crashAndRestart(t *testing.T, bin string, brokers []string, dropStores bool, lanes int) {
	dir := t.TempDir()
	d := &deployment{
		t: t, bin: bin, brokers: strings.Join(brokers, ","), service: kafkatest.Service(t),
		dataDir: filepath.Join(dir, "data"), logDir: dir, lanes: lanes,
	}
	topics := eskafka.AggregateTopics(d.service, "authors")
	// The command processor's consumer group (eskafka.Stage.Group).
	group := d.service + ".authors.processor"

	first := d.start()
	t.Logf("%s ready after %v", first.name, first.waitReady(t, 60*time.Second).Round(time.Millisecond))

	// Load for 1.5s (at least 100 acked writes, at most 20s), then SIGKILL
	// while every client has a write in flight.
	w := newWorkload(t, "w")
	var killedAt time.Time
	took := w.load(first.url, func(elapsed time.Duration, acked int64) bool {
		return elapsed >= 1500*time.Millisecond && acked >= 100 || elapsed >= 20*time.Second
	}, func() {
		first.kill(t)
		killedAt = time.Now()
	})
	t.Logf("load ran %v, then SIGKILL: %s", took.Round(time.Millisecond), w.summary())
	if n := w.acked.Load(); n < 20 {
		t.Fatalf("only %d writes acked before the crash: too few to test anything", n)
	}

	if dropStores {
		stores := filepath.Join(d.dataDir, "stores")
		if _, err := os.Stat(stores); err != nil {
			t.Fatalf("the killed instance left no local stores to delete: %v", err)
		}
		if err := os.RemoveAll(stores); err != nil {
			t.Fatal(err)
		}
	}

	second := d.start()
	ready := second.waitReady(t, 150*time.Second)
	t.Logf("%s ready %v after its start, %v after the SIGKILL",
		second.name, ready.Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond))

	// Liveness after the restart: a new write on each partition, retried
	// with its Idempotency-Key until acked. A partition that takes long
	// is logged with the transactions then open, not failed (unless past
	// the bound): see writeStallBound.
	probes := w.probeWrites(second.url, partitions, writeStallBound, func() {
		t.Logf("a first write after the restart got no success answer; open transactions now:")
		logOpenTransactions(t, brokers, d.service)
	})
	var firsts []string
	var slowest time.Duration
	for _, p := range probes {
		firsts = append(firsts, fmt.Sprintf("partition %d: %v (%d attempts)", p.partition, p.took.Round(time.Millisecond), p.attempts))
		slowest = max(slowest, p.took)
	}
	t.Logf("first write accepted after the restart: %s", strings.Join(firsts, ", "))
	if slowest > 5*time.Second {
		t.Logf("NOTE: writes stalled for %v after the restarted instance was ready", slowest.Round(time.Millisecond))
	}
	retried := retryUnknown(t, w, second.url)
	t.Logf("%d writes cut off by the crash retried with their Idempotency-Key", retried)

	caughtUp := waitCaughtUp(t, brokers, group, topics.Commands, 60*time.Second)
	start := time.Now()
	checkReadBack(t, w, second.url, 90*time.Second)
	t.Logf("commands processed to the end %v later; %d authors read back in %v",
		caughtUp.Round(time.Millisecond), len(w.authors), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	checkTopics(t, w, brokers, d.service, topics)
	t.Logf("topics checked in %v", time.Since(start).Round(time.Millisecond))
}
