package eskafka_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/codec/jsoncodec"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/memstore"
)

// A tiny aggregate for testing the runtime: counters that are opened,
// added to and closed. It knows nothing of the catalog, like the runtime.

type counter struct {
	ID      string `json:"id"`
	Total   int64  `json:"total"`
	Version int64  `json:"version"`
	Pad     string `json:"pad,omitempty"`
}

type cmd interface{ key() string }

type open struct {
	ID string `json:"id"`
}
type add struct {
	ID string `json:"id"`
	N  int64  `json:"n"`
}
type shut struct {
	ID string `json:"id"`
}

// pad grows a counter's state by Text (for size limits); boom panics in
// Decide (for a transform that panics).
type pad struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}
type boom struct {
	ID string `json:"id"`
}

func (c pad) key() string  { return c.ID }
func (c boom) key() string { return c.ID }
func (c open) key() string { return c.ID }
func (c add) key() string  { return c.ID }
func (c shut) key() string { return c.ID }

type event any

type opened struct {
	ID string `json:"id"`
}
type added struct {
	N int64 `json:"n"`
}
type closed struct{}
type padded struct {
	Text string `json:"text"`
}

type rejection struct{ code string }

func (r rejection) Error() string         { return r.code }
func (r rejection) RejectionCode() string { return r.code }

var counters = es.Aggregate[counter, cmd, event]{
	Name: "counters",
	Decide: func(s counter, c cmd) ([]event, error) {
		switch c := c.(type) {
		case open:
			if s.Version > 0 {
				return nil, rejection{"already_exists"}
			}
			return []event{opened(c)}, nil
		case add:
			if s.Version == 0 {
				return nil, rejection{"not_found"}
			}
			return []event{added{c.N}}, nil
		case shut:
			if s.Version == 0 {
				return nil, rejection{"not_found"}
			}
			return []event{closed{}}, nil
		case pad:
			if s.Version == 0 {
				return nil, rejection{"not_found"}
			}
			return []event{padded{c.Text}}, nil
		case boom:
			panic("boom: " + c.ID)
		}
		return nil, errors.New("unknown command")
	},
	Evolve: func(s counter, e event) counter {
		switch e := e.(type) {
		case opened:
			return counter{ID: e.ID, Version: s.Version + 1}
		case added:
			s.Total += e.N
			s.Version++
			return s
		case closed:
			return counter{}
		case padded:
			s.Pad += e.Text
			s.Version++
			return s
		}
		return s
	},
	Key:     func(c cmd) string { return c.key() },
	Version: func(s counter) int64 { return s.Version },
	Exists:  func(s counter) bool { return s.Version > 0 },
}

var codecs = es.Codecs[counter, cmd, event]{
	State:   jsoncodec.Value[counter]{Name: "counter"},
	Command: jsoncodec.NewUnion[cmd](open{}, add{}, shut{}, pad{}, boom{}),
	Event:   jsoncodec.NewUnion[event](opened{}, added{}, closed{}, padded{}),
}

const partitions = 3

// env is one service instance of the counters aggregate.
type env struct {
	t        testing.TB
	cfg      eskafka.Config
	proc     *eskafka.Processor[counter, cmd, event]
	gw       *eskafka.Gateway[counter, cmd, event]
	outcomes *eskafka.Outcomes
	producer *kgo.Client
	cancel   context.CancelFunc
	done     chan struct{}
}

func newConfig(t testing.TB) eskafka.Config {
	return eskafka.Config{
		Brokers:    kafkatest.Brokers(t),
		Service:    kafkatest.Service(t),
		InstanceID: "i1",
		Partitions: partitions,
		Store:      memstore.New(),
		ClientOpts: []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)},
		// As the service runs it: overlapping, unless STAGE_OVERLAP=false
		// (scripts/test runs the suite again with it).
		Overlap: os.Getenv("STAGE_OVERLAP") != "false",
	}
}

func ensureTopics(t testing.TB, cfg eskafka.Config) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ensureTopicsTB(t, cl, cfg)
}

func ensureTopicsTB(t testing.TB, cl *kgo.Client, cfg eskafka.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := eskafka.EnsureTopics(ctx, cl, cfg.Partitions, kafkatest.ReplicationFactor(t, cfg.Brokers), eskafka.AggregateTopics(cfg.Service, "counters").Specs()...); err != nil {
		t.Fatal(err)
	}
}

// start runs a processor, an outcomes follower and a gateway until stop.
func start(t *testing.T, cfg eskafka.Config) *env { return startTB(t, cfg) }

// startTB is start for any test or fuzz target.
func startTB(t testing.TB, cfg eskafka.Config) *env {
	t.Helper()
	ensureTopics(t, cfg)
	e := &env{t: t, cfg: cfg, done: make(chan struct{})}
	e.proc = eskafka.NewProcessor(counters, codecs, nil, cfg)
	var err error
	e.outcomes, err = eskafka.NewOutcomes(cfg, e.proc.Topics().Results, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.producer, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, eskafka.FailoverOpts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	e.gw = eskafka.NewGateway(counters, codecs, cfg.Service, e.producer, e.outcomes)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { _ = e.outcomes.Run(ctx) }()
	go func() {
		defer close(e.done)
		if err := e.proc.Run(ctx); err != nil {
			t.Errorf("processor: %v", err)
		}
	}()
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	e.producer.Close()
	e.cancel = nil
}

// do sends c and waits for its outcome.
func (e *env) do(c cmd, opt eskafka.SendOptions) *eskafka.Result[counter, event] {
	e.t.Helper()
	if opt.MsgID == "" {
		opt.MsgID = ids.New()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sent, err := e.gw.Send(ctx, c, opt)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.gw.Await(ctx, sent)
	if err != nil {
		e.t.Fatalf("await %T %s: %v", c, opt.MsgID, err)
	}
	return res
}

// waitReady waits until the processor serves all its partitions.
func (e *env) waitReady() {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !e.proc.Ready() {
		if time.Now().After(deadline) {
			e.t.Fatal("processor not ready within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readAll returns every committed record of topic, in partition order.
func readAll(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: timed out with %v left", topic, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func storeState(t *testing.T, s store.Store, id string) (counter, bool) {
	t.Helper()
	b, ok, err := s.Get("s/" + id)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return counter{}, false
	}
	c, err := codecs.State.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return c, true
}

func key(i int) string { return fmt.Sprintf("c%03d", i) }
