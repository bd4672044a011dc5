package eskafka_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/kafkatest"
)

// frozenCluster is three in-process brokers one of which can be frozen:
// from Freeze on, every request that reaches it waits, unanswered, until
// the test ends — a broker stopped with SIGSTOP, whose sockets still
// accept. Freeze also does what the cluster does a few seconds later:
// move the frozen broker's leaderships and coordinators to the others.
type frozenCluster struct {
	*kfake.Cluster
	mu     sync.Mutex
	frozen int32 // -1: none
	wake   chan struct{}
}

func newFrozenCluster(t *testing.T) *frozenCluster {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	c := &frozenCluster{Cluster: kc, frozen: -1, wake: make(chan struct{})}
	t.Cleanup(kc.Close)
	t.Cleanup(func() { close(c.wake) }) // runs first: frozen requests return
	kc.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		c.mu.Lock()
		frozen := c.frozen
		c.mu.Unlock()
		if kc.CurrentNode() == frozen {
			kc.SleepControl(func() { <-c.wake })
		}
		return nil, nil, false
	})
	return c
}

// Freeze freezes the broker node, and fences it as the cluster would a
// few seconds later: it leaves the metadata, and its leaderships and
// coordinators move to the other brokers. Connections already open to it
// stay open and unanswered.
func (c *frozenCluster) Freeze(t *testing.T, node int32) {
	t.Helper()
	c.mu.Lock()
	c.frozen = node
	c.mu.Unlock()
	if err := c.RemoveNode(node); err != nil {
		t.Fatal(err)
	}
}

// startOnFrozenCluster starts the counters processor on a frozenCluster,
// ready, with counter key opened.
func startOnFrozenCluster(t *testing.T, key string) (*frozenCluster, eskafka.Config, *env) {
	t.Helper()
	c := newFrozenCluster(t)
	cfg := newConfig(t)
	cfg.Brokers = c.ListenAddrs()
	e := start(t, cfg)
	e.waitReady()
	if res := e.do(open{key}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open %s before the fault: %+v", key, res.Outcome)
	}
	return c, cfg, e
}

// A broker that stops answering without closing its connections — the
// transaction coordinator of the stage, and leader of some of its
// partitions — does not stop the stage for longer than it takes to give up
// on it: once the cluster has moved the coordinator and the leaderships,
// the next write is processed. Before, the stage kept sending its commit
// to the frozen coordinator (franz-go forgets a coordinator only when it
// answers NOT_COORDINATOR) for franz-go's 30 s retry timeout, and each
// attempt waited out a 10 s overhead.
func TestFrozenBrokerDoesNotStopTheStage(t *testing.T) {
	if kafkatest.Real() {
		t.Skip("freezes an in-process broker; the chaos test freezes real ones")
	}
	c, cfg, e := startOnFrozenCluster(t, "f1")

	// The broker to freeze is the stage's transaction coordinator, and
	// leads every partition, so that the stage's fetch, produce and
	// commit all wait on it.
	stage := e.proc.Stage
	node := c.CoordinatorFor(stage.TransactionalID())
	for _, spec := range eskafka.AggregateTopics(cfg.Service, "counters").Specs() {
		for p := range int32(partitions) {
			if err := c.MoveTopicPartition(spec.Name, p, node); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range int64(partitions * 2) {
		if res := e.do(add{"f1", 0}, eskafka.SendOptions{}); !res.Accepted() {
			t.Fatalf("add %d before the freeze: %+v", i, res.Outcome)
		}
	}
	c.Freeze(t, node)

	// The command goes through the gateway's producer, whose partition
	// leaders have moved too; its outcome needs the stage to commit. The
	// budget is not a performance figure: with franz-go's defaults the
	// stage's fetch alone waits 15 s on the frozen broker (5 s of fetch
	// wait plus 10 s of overhead) and its commit 30 s; with the runtime's
	// timeouts, a request waits at most 4 s and a commit 6 s.
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	msgID, frozenAt := ids.New(), time.Now()
	if _, err := e.gw.Send(ctx, add{"f1", 2}, eskafka.SendOptions{MsgID: msgID}); err != nil {
		t.Fatalf("send while broker %d is frozen: %v", node, err)
	}
	res, err := e.gw.Await(ctx, eskafka.Sent{MsgID: msgID})
	if err != nil {
		t.Fatalf("no outcome while broker %d is frozen (the stage waits for it): %v", node, err)
	}
	t.Logf("write processed %v after broker %d froze", time.Since(frozenAt).Round(time.Millisecond), node)
	if !res.Accepted() || res.State.Total != 2 {
		t.Fatalf("add after the freeze: %+v", res.Outcome)
	}
}

// A new session that cannot read its output topics' size limits (here no
// broker answers DescribeConfigs; on a real cluster, the "any broker"
// franz-go picks was just killed and is not fenced yet) keeps the ones an
// earlier session read. Before, it failed and retried with a backoff
// growing to 5 s for as long as the request failed: in the chaos test a
// killed broker held an authors stage 13 s past its fence.
func TestStageKeepsItsLimitsWhenConfigsCannotBeRead(t *testing.T) {
	if kafkatest.Real() {
		t.Skip("refuses requests of an in-process broker; the chaos test kills real ones")
	}
	c, _, e := startOnFrozenCluster(t, "k1")

	var refused atomic.Int64
	c.ControlKey(int16(kmsg.DescribeConfigs), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		refused.Add(1)
		return nil, errors.New("broker down"), true // the connection is closed
	})
	// Another producer with the stage's transactional id fences the
	// stage's: its next transaction fails, and it starts a new session,
	// which reads the limits first.
	fencer, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer fencer.Close()
	// Both of a lane's producers, when its transactions overlap.
	for _, txnID := range []string{e.proc.Stage.TransactionalID(), e.proc.Stage.TransactionalID() + ".overlap"} {
		init := kmsg.NewPtrInitProducerIDRequest()
		init.TransactionalID, init.TransactionTimeoutMillis = &txnID, 10000
		resp, err := init.RequestWith(context.Background(), fencer)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			t.Fatalf("fence the stage's producer %s: %v", txnID, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgID := ids.New()
	if _, err := e.gw.Send(ctx, add{"k1", 3}, eskafka.SendOptions{MsgID: msgID}); err != nil {
		t.Fatalf("send: %v", err)
	}
	res, err := e.gw.Await(ctx, eskafka.Sent{MsgID: msgID})
	if err != nil {
		t.Fatalf("no outcome while DescribeConfigs fails (%d refused): the stage does not start a session without reading the limits again: %v", refused.Load(), err)
	}
	if !res.Accepted() || res.State.Total != 3 {
		t.Fatalf("add: %+v", res.Outcome)
	}
	if refused.Load() == 0 {
		t.Fatal("no DescribeConfigs was refused: the test did not make a new session read the limits")
	}
}
