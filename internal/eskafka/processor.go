package eskafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/internal/es"
	"github.com/bookscatalog/catalog/internal/store"
)

// Config is what a stage or processor needs beyond its logic.
type Config struct {
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// Service prefixes topic names and consumer groups.
	Service string
	// InstanceID is stable for one instance (its data directory); the
	// transactional ids are derived from it so that a restarted instance
	// fences its own unfinished transactions at once.
	InstanceID string
	// AdvertisedURL is how other instances reach this one; the group
	// leader tells every member which URL owns which partition.
	AdvertisedURL string
	// Partitions is the partition count of every topic.
	Partitions int32
	// Store is the local state store; the stage owns writes to it.
	Store store.Store
	// MaxBatch bounds the records of one transaction (default 1000).
	MaxBatch int
	// Linger is how long a transaction may wait for more records after
	// its first one, up to MaxBatch (default 0: take what has arrived).
	Linger time.Duration
	// SessionTimeout is how long the group waits for a member that
	// stopped heartbeating (a crashed instance) before moving its
	// partitions (default 10s). A restarted instance rejoins at once.
	SessionTimeout time.Duration
	// Logger receives the logs (default slog.Default()).
	Logger *slog.Logger
	// ClientOpts are appended to the options of every Kafka client.
	ClientOpts []kgo.Opt
	// BeforeCommit, when set, runs after a batch is produced and before
	// its transaction is committed; an error aborts the transaction. It
	// lets tests inject a failure at the worst moment.
	BeforeCommit func(ctx context.Context) error
	// Observer, when set, is told what the stages do (metrics).
	Observer Observer
	// Retryable, when set, tells a decode error that may pass on retry
	// (the schema registry could not be asked) from a malformed record:
	// the batch is aborted and retried instead of rejecting the command.
	Retryable func(error) bool
}

// Observer is told what stages and processors do; the metrics adapter
// implements it. Methods must be fast and safe for concurrent use.
type Observer interface {
	// Transaction reports a transaction of a stage that consumed records:
	// committed, or aborted (by a failure or a rebalance).
	Transaction(stage string, records int, committed bool, took time.Duration)
	// Lag reports how many records of an input partition wait.
	Lag(stage, topic string, partition int32, lag int64)
	// Restored reports changelog records restored into a stage's store,
	// and how many partitions are still restoring.
	Restored(stage string, records int64, restoring int)
	// Command reports a processed command: its type, "accepted" or
	// "rejected", and the rejection code.
	Command(aggregate, typ, status, code string)
}

type nopObserver struct{}

func (nopObserver) Transaction(string, int, bool, time.Duration) {}
func (nopObserver) Lag(string, string, int32, int64)             {}
func (nopObserver) Restored(string, int64, int)                  {}
func (nopObserver) Command(string, string, string, string)       {}

func (c *Config) defaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
}

// Errors of queries against a stage's store.
var (
	// ErrNotFound: no value with that key.
	ErrNotFound = errors.New("not found")
	// ErrRestoring: the key's partition is being caught up; retry soon.
	ErrRestoring = errors.New("partition is restoring")
	// ErrNotOwner: another instance owns the key's partition.
	ErrNotOwner = errors.New("partition is owned by another instance")
)

// PartitionState is what an instance does with a partition.
type PartitionState int

// Partition states.
const (
	NotOwned PartitionState = iota
	Restoring
	Ready
)

// String implements fmt.Stringer.
func (s PartitionState) String() string {
	return [...]string{"not-owned", "restoring", "ready"}[s]
}

// Processor is the command side of an aggregate: a stage that consumes the
// aggregate's commands and writes, per batch in one transaction, their
// events, the new states (changelog), their outcomes (results) and the
// consumer offsets. It answers queries for the partitions it serves.
type Processor[S, C, E any] struct {
	*Stage
	agg     es.Aggregate[S, C, E]
	codecs  es.Codecs[S, C, E]
	outcome es.Codec[Outcome]
	topics  Topics
	cfg     Config
	log     *slog.Logger
	states  *Table
	dedup   *Table
}

// NewProcessor returns a processor of agg. outcome encodes results records
// (nil: DefaultOutcomeCodec).
func NewProcessor[S, C, E any](agg es.Aggregate[S, C, E], codecs es.Codecs[S, C, E], outcome es.Codec[Outcome], cfg Config) *Processor[S, C, E] {
	cfg.defaults()
	if outcome == nil {
		outcome = DefaultOutcomeCodec()
	}
	t := AggregateTopics(cfg.Service, agg.Name)
	p := &Processor[S, C, E]{
		cfg: cfg, agg: agg, codecs: codecs, outcome: outcome, topics: t,
		log:    cfg.Logger.With("aggregate", agg.Name),
		states: &Table{Prefix: "s/", Topic: t.Changelog, Hashed: true},
		// Dedup keys are msgIds, stored under the partition of the
		// command they belong to.
		dedup: &Table{Prefix: "m/", Topic: t.Dedup},
	}
	p.Stage = NewStage(StageSpec{
		Name:      agg.Name + ".processor",
		Inputs:    []string{t.Commands},
		Tables:    []*Table{p.states, p.dedup},
		Transform: p,
	}, cfg)
	return p
}

// Topics returns the processor's topic names.
func (p *Processor[S, C, E]) Topics() Topics { return p.topics }

// Handle processes one command record (Transform).
func (p *Processor[S, C, E]) Handle(tx *Tx, r *kgo.Record) error {
	key := string(r.Key)
	msgID := header(r, HeaderMsgID)
	if msgID == "" {
		msgID = fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
	}
	idempotent := header(r, HeaderIdempotent) == "1"
	msgHeader := []kgo.RecordHeader{{Key: HeaderMsgID, Value: []byte(msgID)}}
	emit := func(topic string, value []byte, headers []kgo.RecordHeader) {
		tx.Emit(&kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: value, Headers: headers})
	}

	if idempotent {
		prev, ok, err := tx.Get(p.dedup, msgID)
		if err != nil {
			return fmt.Errorf("load outcome of %s: %w", msgID, err)
		}
		if ok {
			// A retry: answer with the first outcome, apply nothing.
			emit(p.topics.Results, prev, msgHeader)
			return nil
		}
	}

	o := p.decide(tx, r, key, msgID)
	if o == nil {
		return errAborted
	}
	code := ""
	if o.Rejection != nil {
		code = o.Rejection.Code
	}
	p.cfg.Observer.Command(p.agg.Name, header(r, HeaderType), o.Status, code)
	b, _, err := p.outcome.Encode(*o)
	if err != nil {
		return fmt.Errorf("encode outcome of %s: %w", msgID, err)
	}
	emit(p.topics.Results, b, msgHeader)
	if idempotent {
		tx.Put(p.dedup, msgID, b)
	}
	return nil
}

var errAborted = errors.New("command processing failed")

// decide runs the command of r and emits its events and state; it returns
// the outcome, or nil after logging a failure that must abort the batch.
func (p *Processor[S, C, E]) decide(tx *Tx, r *kgo.Record, key, msgID string) *Outcome {
	o := &Outcome{MsgID: msgID, Key: key, Status: StatusRejected}
	malformed := func(format string, args ...any) *Outcome {
		p.log.Warn("malformed command", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "msgId", msgID, "problem", fmt.Sprintf(format, args...))
		o.Rejection = &es.Rejection{Code: es.CodeMalformedCommand, Message: fmt.Sprintf(format, args...)}
		return o
	}
	cmd, err := p.codecs.Command.Decode(r.Value)
	if err != nil {
		if p.cfg.Retryable != nil && p.cfg.Retryable(err) {
			p.log.Warn("cannot decode command now; retrying the batch", "offset", r.Offset, "err", err)
			return nil
		}
		return malformed("undecodable command: %v", err)
	}
	if k := p.agg.Key(cmd); k != key {
		return malformed("record key %q does not match the command's %q", key, k)
	}
	var expected *int64
	if h := header(r, HeaderExpectedVersion); h != "" {
		v, err := strconv.ParseInt(h, 10, 64)
		if err != nil {
			return malformed("header %s: %q is not an integer", HeaderExpectedVersion, h)
		}
		expected = &v
	}
	state, err := p.load(tx, key)
	if err != nil {
		p.log.Error("load state", "key", key, "err", err)
		return nil
	}
	before := p.agg.Version(state)
	next, events, rej := p.agg.Handle(state, cmd, expected)
	if rej != nil {
		o.Version, o.Rejection = before, rej
		return o
	}
	o.Status, o.Version = StatusAccepted, p.agg.Version(next)
	for i, e := range events {
		b, typ, err := p.codecs.Event.Encode(e)
		if err != nil {
			p.log.Error("encode event", "type", fmt.Sprintf("%T", e), "err", err)
			return nil
		}
		o.Events = append(o.Events, EncodedEvent{Type: typ, Data: b})
		tx.Emit(&kgo.Record{Topic: p.topics.Events, Partition: r.Partition, Key: r.Key, Value: b, Headers: []kgo.RecordHeader{
			{Key: HeaderMsgID, Value: []byte(msgID)},
			{Key: HeaderType, Value: []byte(typ)},
			{Key: HeaderVersion, Value: formatInt(before + int64(i) + 1)},
		}})
	}
	if p.agg.Exists(next) {
		b, _, err := p.codecs.State.Encode(next)
		if err != nil {
			p.log.Error("encode state", "key", key, "err", err)
			return nil
		}
		o.State = b
		if len(events) > 0 {
			tx.Put(p.states, key, b)
		}
	} else if len(events) > 0 {
		tx.Put(p.states, key, nil) // tombstone
	}
	return o
}

// load returns the current state of key as the transaction sees it, or the
// zero state.
func (p *Processor[S, C, E]) load(tx *Tx, key string) (S, error) {
	var zero S
	b, ok, err := tx.Get(p.states, key)
	if err != nil || !ok {
		return zero, err
	}
	s, err := p.codecs.State.Decode(b)
	if err != nil {
		return zero, fmt.Errorf("decode stored state of %q: %w", key, err)
	}
	return s, nil
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
