package eskafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
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
// transaction open on the broker, and its offsets commit with the next
// batch that produces. Before, its offsets went into a transaction franz-go
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
	produce("loud")
	waitFor(t, "the loud record's offsets to commit", func() bool { return committed() == 4 })
	// Nothing stays open: give a transaction left behind a moment to
	// show, then look.
	time.Sleep(500 * time.Millisecond)
	if ongoing := open(); len(ongoing) > 0 {
		t.Fatalf("transactions left open by batches that produced nothing: %v", ongoing)
	}
}
