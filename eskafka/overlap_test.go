package eskafka_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/kafkatest"
)

// quietTransform writes nothing for an input whose value is "quiet", and
// copies any other to output.
type quietTransform struct{ output string }

func (q quietTransform) Handle(tx *eskafka.Tx, r *kgo.Record) error {
	if string(r.Value) != "quiet" {
		tx.Emit(&kgo.Record{Topic: q.output, Partition: -1, Key: r.Key, Value: r.Value})
	}
	return nil
}

// With overlapping transactions, a batch that produces nothing leaves no
// transaction open on the broker, and its offsets are committed. Before, its offsets went into a transaction franz-go
// did not know was begun: its EndTransaction sends no EndTxn when nothing
// was produced, so the transaction stayed open until its timeout, holding
// the group's offsets unstable and the stage's next batches on that
// producer inside it.
func TestOverlapBatchThatProducesNothing(t *testing.T) {
	obs := &countingObserver{}
	app := newApp(t, eskafka.AppConfig{Config: eskafka.Config{Overlap: true, Observer: obs}})
	cfg := app.Config()
	p := cfg.Service + ".quiet."
	stage := eskafka.NewStage(eskafka.StageSpec{
		Name: "quiet", Inputs: []string{p + "in"}, Outputs: []string{p + "out"},
		Transform: quietTransform{output: p + "out"},
	}, app.StageConfig("quiet"))
	app.AddStage(stage)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	runApp(t, app)
	waitFor(t, "the app to be ready", app.Ready)

	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	produce := func(value string) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: p + "in", Partition: 0, Key: []byte("k"), Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	open := func() []string {
		ids := []string{stage.TransactionalID(), stage.TransactionalID() + ".overlap"}
		described, err := adm.DescribeTransactions(ctx, ids...)
		if err != nil && len(described) == 0 {
			t.Fatalf("describe transactions %v: %v", ids, err)
		}
		var ongoing []string
		for _, d := range described {
			if d.Err == nil && d.State == "Ongoing" {
				ongoing = append(ongoing, d.TxnID)
			}
		}
		return ongoing
	}
	committed := func() int64 {
		offsets, err := adm.FetchOffsets(ctx, stage.Group())
		if err != nil {
			return -1
		}
		o, ok := offsets.Lookup(p+"in", 0)
		if !ok || o.Err != nil {
			return -1
		}
		return o.At
	}

	// One batch at a time, each processed before the next is sent.
	for i := range int64(3) {
		produce("quiet")
		waitFor(t, "the stage to take the quiet record", func() bool { return obs.records.Load() == i+1 })
	}
	// Their offsets are committed although they wrote nothing: a stage
	// that only ever skips its input must not take it all again at
	// every restart.
	waitFor(t, "the quiet records' offsets to commit", func() bool { return committed() == 3 })
	produce("loud")
	waitFor(t, "the loud record's offsets to commit", func() bool { return committed() == 4 })
	// Nothing stays open: give a transaction left behind a moment to
	// show, then look.
	time.Sleep(500 * time.Millisecond)
	if ongoing := open(); len(ongoing) > 0 {
		t.Fatalf("transactions left open by batches that produced nothing: %v", ongoing)
	}
}

// With overlapping transactions, a batch whose consumer offsets the group
// coordinator refuses for a reason a rebalance gives (ILLEGAL_GENERATION:
// the member's generation moved on while the batch was decided, as when
// the member rejoins after a rebalance let through) is aborted and comes
// back, as under a GroupTransactSession, and the session goes on. Before,
// the session ended: every partition of the lane was dropped, restored and
// joined again, after a backoff, for a race each rebalance can bring.
func TestOverlapRefusedOffsetsAbortTheBatchNotTheSession(t *testing.T) {
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
	cfg.Overlap = true
	e := start(t, cfg)
	if res := e.do(open{"a"}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open: %+v", res.Outcome)
	}
	var inits, refused atomic.Int32
	c.ControlKey(int16(kmsg.InitProducerID), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		inits.Add(1)
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.TxnOffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		refused.Add(1)
		r := req.(*kmsg.TxnOffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		resp.Version = r.Version
		for _, rt := range r.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.IllegalGeneration.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true // once
	})
	if res := e.do(add{"a", 2}, eskafka.SendOptions{}); !res.Accepted() || res.State.Total != 2 {
		t.Fatalf("add: %+v", res.Outcome)
	}
	if refused.Load() != 1 {
		t.Fatalf("the broker refused %d TxnOffsetCommits, want 1", refused.Load())
	}
	if n := inits.Load(); n != 0 {
		t.Fatalf("the lane initialised %d transactional producers after its offsets were refused once: its session ended; want the batch aborted and retried in the same session", n)
	}
	if events := readAll(t, cfg.Brokers, e.proc.Topics().Events); len(events) != 2 {
		t.Fatalf("events topic holds %d records, want 2", len(events))
	}
}

// transactionVersion2 reports whether the cluster at brokers runs
// transaction version 2.
func transactionVersion2(t *testing.T, brokers []string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tv2, err := eskafka.TransactionVersion2(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return tv2
}

// Overlapping producers run the cluster's transaction version: under
// version 2 each transaction ends with a new producer epoch (KIP-890 part
// 2), so no two transactions of a producer share one, and a late write of
// an ended transaction cannot join the next. Before, TxnOffsetCommit was
// pinned to v4, which kept franz-go on version 1: one epoch per session.
func TestOverlapRunsTransactionVersion2(t *testing.T) {
	cfg := newConfig(t)
	cfg.Overlap = true
	if !transactionVersion2(t, cfg.Brokers) {
		t.Skip("the cluster runs transaction version 1")
	}
	e := start(t, cfg)
	const n = 10
	for i := range n {
		// One command at a time: each is a transaction of its own.
		if res := e.do(open{key(i)}, eskafka.SendOptions{}); !res.Accepted() {
			t.Fatalf("open %d: %+v", i, res.Outcome)
		}
	}
	type producerEpoch struct {
		id    int64
		epoch int16
	}
	msgs := map[producerEpoch]map[string]bool{}
	for _, r := range readAll(t, cfg.Brokers, e.proc.Topics().Events) {
		pe := producerEpoch{r.ProducerID, r.ProducerEpoch}
		if msgs[pe] == nil {
			msgs[pe] = map[string]bool{}
		}
		msgs[pe][header(r, eskafka.HeaderMsgID)] = true
	}
	for pe, ids := range msgs {
		if len(ids) > 1 {
			t.Errorf("producer %d epoch %d wrote the events of %d transactions, want one each", pe.id, pe.epoch, len(ids))
		}
	}
}

// On a cluster still at transaction version 1, overlapping transactions
// take their offsets through AddOffsetsToTxn and TxnOffsetCommit v4, and
// every command still has exactly one outcome and one set of events. kfake
// only: the feature is the cluster's, and a real broker is shared with
// other packages' tests.
func TestOverlapOnTransactionVersion1(t *testing.T) {
	if kafkatest.Real() {
		t.Skip("downgrades the cluster's transaction.version; runs on kfake")
	}
	cfg := newConfig(t)
	cfg.Overlap = true
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := kadm.NewClient(cl).UpdateFeatures(ctx, false, kadm.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 2})
	if err == nil {
		err = res["transaction.version"].Err
	}
	if err != nil {
		t.Fatalf("downgrade transaction.version to 1: %v", err)
	}
	if transactionVersion2(t, cfg.Brokers) {
		t.Fatal("the cluster still runs transaction version 2 after the downgrade")
	}
	checkExactlyOnceOutputs(t, cfg)
}
