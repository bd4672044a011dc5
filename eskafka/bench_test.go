package eskafka_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/store/memstore"
	"github.com/bookscatalog/catalog/store/pebblestore"
)

// countingObserver counts processed commands, transactions and fenced
// transactions.
type countingObserver struct {
	commands, txns, records, fenced atomic.Int64
}

func (o *countingObserver) Transaction(_ string, records int, committed bool, _ time.Duration) {
	if committed {
		o.txns.Add(1)
		o.records.Add(int64(records))
	}
}
func (o *countingObserver) Lag(string, string, int32, int64)       {}
func (o *countingObserver) Restored(string, int64)                 {}
func (o *countingObserver) Command(string, string, string, string) { o.commands.Add(1) }
func (o *countingObserver) Poisoned(string, string)                {}
func (o *countingObserver) Fenced(string)                          { o.fenced.Add(1) }

// BenchmarkProcessor measures commands per second through the whole
// processor: fetch, decode, decide, evolve, encode, produce events, state,
// outcome, commit the transaction with the offsets, apply to the store. The
// commands are produced before the clock starts; one op is one command.
func BenchmarkProcessor(b *testing.B) {
	for _, tc := range []struct {
		name     string
		maxBatch int
		pebble   bool
	}{
		{"batch=100/memstore", 100, false},
		{"batch=1000/memstore", 1000, false},
		{"batch=1000/pebble", 1000, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := eskafka.Config{
				Brokers: kafkatest.Brokers(b), Service: kafkatest.Service(b), InstanceID: "bench",
				Partitions: 6, MaxBatch: tc.maxBatch, Store: memstore.New(),
			}
			if tc.pebble {
				st, err := pebblestore.Open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				cfg.Store = st
			}
			obs := &countingObserver{}
			cfg.Observer = obs
			cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ProducerLinger(5*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ensureTopicsTB(b, cl, cfg)
			topic := eskafka.AggregateTopics(cfg.Service, "counters").Commands
			ctx := context.Background()
			// Commands to 1000 counters: one open each, then adds.
			const keys = 1000
			recs := make([]*kgo.Record, 0, b.N)
			for i := range b.N {
				k := fmt.Sprintf("c%04d", i%keys)
				var v string
				if i < keys {
					v = fmt.Sprintf(`{"type":"open","id":%q}`, k)
				} else {
					v = fmt.Sprintf(`{"type":"add","id":%q,"n":1}`, k)
				}
				recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v),
					Headers: []kgo.RecordHeader{{Key: eskafka.HeaderMsgID, Value: []byte(fmt.Sprint("m", i))}}})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			p := eskafka.NewProcessor(counters, codecs, nil, cfg)
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			b.ResetTimer()
			start := time.Now()
			go func() { defer close(done); _ = p.Run(rctx) }()
			for obs.commands.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			<-done
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commands/s")
			if t := obs.txns.Load(); t > 0 {
				b.ReportMetric(float64(obs.records.Load())/float64(t), "commands/txn")
			}
		})
	}
}

// BenchmarkHistory reads the history of an aggregate with 1,000 events from
// the Pebble store: a page of 100, the whole of it, and its state as of its
// 500th event (a fold of 500 events).
func BenchmarkHistory(b *testing.B) {
	cfg := newConfig(b)
	st, err := pebblestore.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg.Store = st
	e := startTB(b, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.do(open{"long"}, eskafka.SendOptions{})
	var last string
	for i := 1; i < 1000; i++ {
		last = fmt.Sprintf("long-%d", i)
		if _, err := e.gw.Send(ctx, add{"long", 1}, eskafka.SendOptions{MsgID: last}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := e.gw.Await(ctx, eskafka.Sent{MsgID: last}); err != nil {
		b.Fatal(err)
	}
	b.Run("page=100", func(b *testing.B) {
		for b.Loop() {
			if p, err := e.proc.History("long", 450, 100, false); err != nil || len(p.Events) != 100 {
				b.Fatal(err)
			}
		}
	})
	b.Run("all=1000", func(b *testing.B) {
		for b.Loop() {
			if p, err := e.proc.History("long", 0, 1000, false); err != nil || len(p.Events) != 1000 {
				b.Fatal(err)
			}
		}
	})
	b.Run("stateAt=500", func(b *testing.B) {
		for b.Loop() {
			if s, _, err := e.proc.StateAt("long", 500, time.Time{}); err != nil || s.Total != 499 {
				b.Fatal(err, s)
			}
		}
	})
}

// slowTransform spends a fixed time on each record without using the CPU,
// as a transform that calls out to something slow would.
type slowTransform struct{ per time.Duration }

func (s slowTransform) Handle(*eskafka.Tx, *kgo.Record) error {
	time.Sleep(s.per)
	return nil
}

// BenchmarkStageLanes measures records per second through a stage whose
// transform takes 200 µs a record, with one lane and with three: where a
// lane's own work bounds the stage (not the broker, not the CPU), lanes
// multiply it. The records are produced, over 6 partitions, before the
// clock starts; one op is one record.
func BenchmarkStageLanes(b *testing.B) {
	for _, lanes := range []int{1, 3} {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			cfg := eskafka.Config{
				Brokers: kafkatest.Brokers(b), Service: kafkatest.Service(b), InstanceID: "bench",
				Partitions: 6, Store: memstore.New(), Lanes: lanes,
			}
			obs := &countingObserver{}
			cfg.Observer = obs
			cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ProducerLinger(5*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ensureTopicsTB(b, cl, cfg)
			topic := eskafka.AggregateTopics(cfg.Service, "counters").Commands
			recs := make([]*kgo.Record, 0, b.N)
			for i := range b.N {
				recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("x")})
			}
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			st := eskafka.NewStage(eskafka.StageSpec{Name: "slow", Inputs: []string{topic}, Transform: slowTransform{200 * time.Microsecond}}, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			b.ResetTimer()
			start := time.Now()
			go func() { defer close(done); _ = st.Run(ctx) }()
			for obs.records.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			<-done
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		})
	}
}
