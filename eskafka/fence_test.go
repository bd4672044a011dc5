package eskafka_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/kafkatest"
)

// TestNewOwnerFencesATransactionLeftOpenByADepartedMember: a member of the
// processor's group died inside a transaction that wrote an outcome to a
// key's results partition, and did not come back. Until that transaction
// ends, read_committed readers stop before it: no outcome on that partition
// can be seen. Its timeout here (5 minutes) outlasts the test, so the
// command's outcome arrives only if the instance that takes the partitions
// ends the transaction itself, and the dead member, should it wake, can
// no longer commit.
func TestNewOwnerFencesATransactionLeftOpenByADepartedMember(t *testing.T) {
	cfg := newConfig(t)
	obs := &countingObserver{}
	cfg.Observer = obs
	ensureTopics(t, cfg)
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	group := cfg.Service + ".counters.processor"
	k := key(0)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	gone := leaveOpen(ctx, t, cfg, group+".gone", topics.Results, k)

	e := start(t, cfg)
	e.waitReady()
	if res := e.do(open{ID: k}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open %s: %+v, want accepted", k, res)
	}

	adm := kadm.NewClient(e.producer)
	described, err := adm.DescribeTransactions(ctx, group+".gone")
	if err != nil {
		t.Fatal(err)
	}
	if d := described[group+".gone"]; d.State == "Ongoing" {
		t.Errorf("the departed member's transaction is still open: %+v", d)
	}
	// The fence's InitProducerID answer can come after the outcome it
	// let through has been read, and the observer is told after it.
	waitFor(t, "the observer to be told of the fenced transaction", func() bool { return obs.fenced.Load() >= 1 })
	if n := obs.fenced.Load(); n != 1 {
		t.Errorf("the observer was told of %d fenced transactions, want 1", n)
	}
	if err := gone.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the departed member committed its transaction after the new owner took its partitions; want it fenced")
	} else {
		t.Logf("the departed member's commit was refused: %v", err)
	}
}

// TestRestoreWaitingForADepartedMemberFencesIt: the search for departed
// members' transactions made when the partitions came found nothing (here
// the broker's first answer to ListTransactions is empty; in the chaos test,
// a search still held by a frozen broker made the new one wait), and the
// departed member's transaction is open on the changelog of a partition the
// stage now owns. The restore of that partition waits for it to end; while
// it waits it asks for another search, which fences the transaction. Before,
// nothing did until the transaction's timeout (5 minutes here, past the
// stall timeout of 2), and the stage was not ready within a minute.
func TestRestoreWaitingForADepartedMemberFencesIt(t *testing.T) {
	if kafkatest.Real() {
		t.Skip("answers a request of an in-process broker in its place")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := newConfig(t)
	cfg.Brokers = c.ListenAddrs()
	cfg.StallTimeout = 2 * time.Minute
	ensureTopics(t, cfg)
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	group := cfg.Service + ".counters.processor"
	k := key(0)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	gone := leaveOpen(ctx, t, cfg, group+".gone", topics.Changelog, k)
	var missed atomic.Bool
	c.ControlKey(int16(kmsg.ListTransactions), func(req kmsg.Request) (kmsg.Response, error, bool) {
		missed.Store(true)
		return req.(*kmsg.ListTransactionsRequest).ResponseKind(), nil, true
	})

	e := start(t, cfg)
	e.waitReady()
	if !missed.Load() {
		t.Fatal("no search for departed members' transactions was made when the partitions came")
	}
	if res := e.do(open{ID: k}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open %s: %+v, want accepted", k, res)
	}
	if err := gone.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the departed member committed its transaction after the new owner took its partitions; want it fenced")
	}
}

// leaveOpen begins a transaction with the transactional id id, with a
// timeout longer than any test, and writes to topic, on key's partition, a
// record it leaves uncommitted: a member that died inside its transaction.
func leaveOpen(ctx context.Context, t *testing.T, cfg eskafka.Config, id, topic, key string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(5*time.Minute),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	r := &kgo.Record{Topic: topic, Partition: eskafka.PartitionFor(key, cfg.Partitions), Key: []byte(key), Value: []byte("left open")}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return cl
}

// An instance that crashed with its second producer's transaction open
// (Config.Overlap) and comes back without Overlap ends that transaction
// at once: nothing initialises the ".overlap" id any more. Before, only
// the ids of members gone from the group were fenced, and this instance is
// back, so the transaction held the partitions it wrote (here the results
// partition of the next command) until its timeout.
func TestRestartWithoutOverlapFencesItsOwnOverlapTransaction(t *testing.T) {
	cfg := newConfig(t)
	cfg.Overlap = false
	obs := &countingObserver{}
	cfg.Observer = obs
	ensureTopics(t, cfg)
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	id := cfg.Service + ".counters.processor." + cfg.InstanceID + ".overlap"
	k := key(0)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	left := leaveOpen(ctx, t, cfg, id, topics.Results, k)

	e := start(t, cfg)
	e.waitReady()
	waitFor(t, "the instance's own .overlap transaction to be fenced", func() bool { return obs.fenced.Load() >= 1 })
	if res := e.do(open{ID: k}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open %s: %+v, want accepted", k, res)
	}
	described, err := kadm.NewClient(e.producer).DescribeTransactions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d := described[id]; d.State == "Ongoing" {
		t.Errorf("the .overlap transaction is still open: %+v", d)
	}
	if err := left.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the crashed producer committed its transaction after the restart; want it fenced")
	}
}
