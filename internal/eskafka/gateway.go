package eskafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/internal/es"
)

// Outcomes follows a results topic (read_committed, from its start, so
// outcomes of the retention period can be looked up after a restart) and
// hands each outcome to whoever waits for it. It remembers the most recent
// outcomes, up to a bound.
type Outcomes struct {
	topic string
	codec es.Codec[Outcome]
	cl    *kgo.Client
	log   *slog.Logger

	mu      sync.Mutex
	recent  map[string]*Outcome
	order   []string // ring of msgIds in arrival order, for eviction
	next    int
	waiters map[string][]chan *Outcome
}

// MaxRecentOutcomes bounds the outcomes an Outcomes keeps in memory.
const MaxRecentOutcomes = 50000

// NewOutcomes returns a follower of topic; call Run to start it.
func NewOutcomes(cfg Config, topic string, codec es.Codec[Outcome]) (*Outcomes, error) {
	cfg.defaults()
	if codec == nil {
		codec = DefaultOutcomeCodec()
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100e6), // 100ms: outcomes are latency-sensitive
	}, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("results client: %w", err)
	}
	return &Outcomes{
		topic: topic, codec: codec, cl: cl, log: cfg.Logger.With("topic", topic),
		recent: map[string]*Outcome{}, order: make([]string, MaxRecentOutcomes), waiters: map[string][]chan *Outcome{},
	}, nil
}

// Run follows the topic until ctx is done, then closes the client.
func (o *Outcomes) Run(ctx context.Context) error {
	defer o.cl.Close()
	for {
		fetches := o.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		for _, fe := range fetches.Errors() {
			o.log.Warn("fetch results", "partition", fe.Partition, "err", fe.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			out, err := o.codec.Decode(r.Value)
			if err != nil {
				o.log.Warn("undecodable outcome", "partition", r.Partition, "offset", r.Offset, "err", err)
				return
			}
			o.deliver(&out)
		})
	}
}

func (o *Outcomes) deliver(out *Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, seen := o.recent[out.MsgID]; !seen {
		if old := o.order[o.next]; old != "" {
			delete(o.recent, old)
		}
		o.order[o.next] = out.MsgID
		o.next = (o.next + 1) % len(o.order)
	}
	o.recent[out.MsgID] = out
	for _, ch := range o.waiters[out.MsgID] {
		ch <- out
	}
	delete(o.waiters, out.MsgID)
}

// Lookup returns the outcome of msgID if it is known.
func (o *Outcomes) Lookup(msgID string) (*Outcome, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out, ok := o.recent[msgID]
	return out, ok
}

// Wait returns the outcome of msgID once it is committed, or ctx's error.
func (o *Outcomes) Wait(ctx context.Context, msgID string) (*Outcome, error) {
	o.mu.Lock()
	if out, ok := o.recent[msgID]; ok {
		o.mu.Unlock()
		return out, nil
	}
	ch := make(chan *Outcome, 1)
	o.waiters[msgID] = append(o.waiters[msgID], ch)
	o.mu.Unlock()
	select {
	case out := <-ch:
		return out, nil
	case <-ctx.Done():
		o.mu.Lock()
		ws := o.waiters[msgID]
		for i, w := range ws {
			if w == ch {
				o.waiters[msgID] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(o.waiters[msgID]) == 0 {
			delete(o.waiters, msgID)
		}
		o.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Gateway is the write side of an aggregate for adapters such as HTTP: it
// sends commands to the commands topic and returns their typed outcomes.
type Gateway[S, C, E any] struct {
	agg      es.Aggregate[S, C, E]
	codecs   es.Codecs[S, C, E]
	topics   Topics
	producer *kgo.Client
	outcomes *Outcomes
}

// NewGateway returns a gateway that produces with producer (an idempotent,
// non-transactional client using Kafka's default partitioner) and reads
// outcomes from outcomes.
func NewGateway[S, C, E any](agg es.Aggregate[S, C, E], codecs es.Codecs[S, C, E], service string, producer *kgo.Client, outcomes *Outcomes) *Gateway[S, C, E] {
	return &Gateway[S, C, E]{agg: agg, codecs: codecs, topics: AggregateTopics(service, agg.Name), producer: producer, outcomes: outcomes}
}

// SendOptions qualify a command.
type SendOptions struct {
	// MsgID identifies the command; required.
	MsgID string
	// ExpectedVersion, if set, is checked against the aggregate's.
	ExpectedVersion *int64
	// Idempotent makes the processor remember the outcome by MsgID, so
	// that a command sent again with the same MsgID applies nothing.
	Idempotent bool
}

// Result is a decoded outcome.
type Result[S, E any] struct {
	*Outcome
	// State is the decoded Outcome.State; Exists is false when nil.
	State  S
	Exists bool
	Events []E
}

// Send writes cmd to the commands topic and returns once Kafka has it.
func (g *Gateway[S, C, E]) Send(ctx context.Context, cmd C, opt SendOptions) error {
	if opt.MsgID == "" {
		return errors.New("send command: empty msgId")
	}
	b, typ, err := g.codecs.Command.Encode(cmd)
	if err != nil {
		return fmt.Errorf("encode command %T: %w", cmd, err)
	}
	r := &kgo.Record{Topic: g.topics.Commands, Key: []byte(g.agg.Key(cmd)), Value: b, Headers: []kgo.RecordHeader{
		{Key: HeaderMsgID, Value: []byte(opt.MsgID)},
		{Key: HeaderType, Value: []byte(typ)},
	}}
	if opt.ExpectedVersion != nil {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderExpectedVersion, Value: formatInt(*opt.ExpectedVersion)})
	}
	if opt.Idempotent {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderIdempotent, Value: []byte("1")})
	}
	if err := g.producer.ProduceSync(ctx, r).FirstErr(); err != nil {
		return fmt.Errorf("produce command %s: %w", opt.MsgID, err)
	}
	return nil
}

// Await waits for the outcome of msgID.
func (g *Gateway[S, C, E]) Await(ctx context.Context, msgID string) (*Result[S, E], error) {
	out, err := g.outcomes.Wait(ctx, msgID)
	if err != nil {
		return nil, err
	}
	return g.Decode(out)
}

// Lookup returns the decoded outcome of msgID if it is known.
func (g *Gateway[S, C, E]) Lookup(msgID string) (*Result[S, E], bool, error) {
	out, ok := g.outcomes.Lookup(msgID)
	if !ok {
		return nil, false, nil
	}
	res, err := g.Decode(out)
	return res, err == nil, err
}

// Decode decodes the state and events of out.
func (g *Gateway[S, C, E]) Decode(out *Outcome) (*Result[S, E], error) {
	res := &Result[S, E]{Outcome: out}
	if out.State != nil {
		s, err := g.codecs.State.Decode(out.State)
		if err != nil {
			return nil, fmt.Errorf("decode state in outcome %s: %w", out.MsgID, err)
		}
		res.State, res.Exists = s, true
	}
	for _, e := range out.Events {
		ev, err := g.codecs.Event.Decode(e.Data)
		if err != nil {
			return nil, fmt.Errorf("decode %s in outcome %s: %w", e.Type, out.MsgID, err)
		}
		res.Events = append(res.Events, ev)
	}
	return res, nil
}
