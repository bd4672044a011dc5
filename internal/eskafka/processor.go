package eskafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/internal/es"
	"github.com/bookscatalog/catalog/internal/store"
)

// Store key prefixes of a processor's store.
const (
	statePrefix = "s/" // s/<aggregate id> -> encoded state
	dedupPrefix = "m/" // m/<partition %04d>/<msgId> -> encoded outcome
)

func dedupKey(partition int32, msgID string) string {
	return fmt.Sprintf("%s%04d/%s", dedupPrefix, partition, msgID)
}

// Config is what a processor needs beyond its aggregate.
type Config struct {
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// Service prefixes topic names and the consumer group.
	Service string
	// InstanceID is stable for one instance (its data directory); the
	// transactional id is derived from it so that a restarted instance
	// fences its own unfinished transaction at once.
	InstanceID string
	// Partitions is the partition count of every topic.
	Partitions int32
	// Store is the local state store; the processor owns writes to it.
	Store store.Store
	// MaxBatch bounds the commands of one transaction (default 1000).
	MaxBatch int
	// Linger is how long a transaction may wait for more commands after
	// its first one, up to MaxBatch (default 0: take what has arrived).
	Linger time.Duration
	// Logger receives the processor's logs (default slog.Default()).
	Logger *slog.Logger
	// ClientOpts are appended to the options of every Kafka client.
	ClientOpts []kgo.Opt
	// BeforeCommit, when set, runs after a batch is produced and before
	// its transaction is committed; an error aborts the transaction. It
	// lets tests inject a failure at the worst moment.
	BeforeCommit func(ctx context.Context) error
	// OnCommit, when set, is called after each committed transaction with
	// the number of commands it held.
	OnCommit func(commands int, took time.Duration)
}

func (c *Config) defaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Errors of queries against a processor's store.
var (
	// ErrNotFound: no aggregate with that key.
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

// Processor consumes an aggregate's commands and writes, in one Kafka
// transaction per batch, their events, the new states, their outcomes and
// the consumer offsets. It also answers queries from its store for the
// partitions it owns.
type Processor[S, C, E any] struct {
	agg     es.Aggregate[S, C, E]
	codecs  es.Codecs[S, C, E]
	outcome es.Codec[Outcome]
	topics  Topics
	cfg     Config
	log     *slog.Logger

	mu       sync.RWMutex
	parts    map[int32]PartitionState
	joined   bool
	restored int64 // changelog records restored, for metrics and tests
}

// NewProcessor returns a processor of agg. outcome encodes results records
// (nil: DefaultOutcomeCodec).
func NewProcessor[S, C, E any](agg es.Aggregate[S, C, E], codecs es.Codecs[S, C, E], outcome es.Codec[Outcome], cfg Config) *Processor[S, C, E] {
	cfg.defaults()
	if outcome == nil {
		outcome = DefaultOutcomeCodec()
	}
	return &Processor[S, C, E]{
		agg: agg, codecs: codecs, outcome: outcome, cfg: cfg,
		topics: AggregateTopics(cfg.Service, agg.Name),
		log:    cfg.Logger.With("aggregate", agg.Name),
		parts:  map[int32]PartitionState{},
	}
}

// Topics returns the processor's topic names.
func (p *Processor[S, C, E]) Topics() Topics { return p.topics }

// Group returns the processor's consumer group.
func (p *Processor[S, C, E]) Group() string { return p.cfg.Service + "." + p.agg.Name + ".processor" }

// TransactionalID returns the processor's stable transactional id.
func (p *Processor[S, C, E]) TransactionalID() string {
	return p.Group() + "." + p.cfg.InstanceID
}

// Run processes commands until ctx is done or an unrecoverable error
// occurs. A transaction in flight when ctx is cancelled is finished.
func (p *Processor[S, C, E]) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		err := p.runSession(ctx)
		if ctx.Err() != nil {
			return nil
		}
		p.log.Error("transactional session failed; starting a new one", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (p *Processor[S, C, E]) runSession(ctx context.Context) error {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(p.cfg.Brokers...),
		kgo.TransactionalID(p.TransactionalID()),
		kgo.ConsumerGroup(p.Group()),
		kgo.ConsumeTopics(p.topics.Commands),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Every output record goes to the partition of the command
		// that caused it; all topics have the same partition count,
		// so this is also the partition its key hashes to.
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.OnPartitionsAssigned(p.onAssigned),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onRevoked),
	}, p.cfg.ClientOpts...)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("new transactional session: %w", err)
	}
	defer func() {
		sess.Close()
		p.mu.Lock()
		clear(p.parts)
		p.joined = false
		p.mu.Unlock()
	}()

	for ctx.Err() == nil {
		if err := p.restorePending(ctx); err != nil {
			return err
		}
		recs, err := p.poll(ctx, sess)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			continue
		}
		// A partition assigned during the poll is caught up before
		// any of its commands is processed.
		if err := p.restorePending(ctx); err != nil {
			return err
		}
		if err := p.processBatch(ctx, sess, recs); err != nil {
			return err
		}
	}
	return nil
}

// poll returns the next batch: what has arrived, up to MaxBatch, waiting
// up to Linger after the first record for more.
func (p *Processor[S, C, E]) poll(ctx context.Context, sess *kgo.GroupTransactSession) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	var deadline time.Time
	for {
		wait := 200 * time.Millisecond
		if len(recs) > 0 {
			wait = time.Until(deadline)
			if wait <= 0 || len(recs) >= p.cfg.MaxBatch {
				return recs, nil
			}
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fetches := sess.PollRecords(pctx, p.cfg.MaxBatch-len(recs))
		cancel()
		if fetches.IsClientClosed() {
			return nil, errors.New("client closed")
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			p.log.Warn("fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
		got := fetches.Records()
		if len(recs) == 0 {
			if len(got) == 0 || p.cfg.Linger <= 0 {
				return got, nil
			}
			deadline = time.Now().Add(p.cfg.Linger)
		}
		recs = append(recs, got...)
		if ctx.Err() != nil {
			return recs, nil
		}
	}
}

func (p *Processor[S, C, E]) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.joined = true
	for _, part := range assigned[p.topics.Commands] {
		p.parts[part] = Restoring
	}
	p.log.Info("partitions assigned", "partitions", assigned[p.topics.Commands])
}

func (p *Processor[S, C, E]) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, part := range revoked[p.topics.Commands] {
		delete(p.parts, part)
	}
	p.log.Info("partitions revoked", "partitions", revoked[p.topics.Commands])
}

// txn is the work of one transaction, staged until it commits.
type txn[S any] struct {
	states  map[string]stagedState[S]
	dedup   map[string][]byte
	batch   store.Batch
	mu      sync.Mutex // guards the fields below, written by promises
	offsets map[store.TopicPartition]int64
	failed  error
}

type stagedState[S any] struct {
	state S
}

func (t *txn[S]) promise(r *kgo.Record, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.failed == nil {
			t.failed = fmt.Errorf("produce to %s: %w", r.Topic, err)
		}
		return
	}
	tp := store.TopicPartition{Topic: r.Topic, Partition: r.Partition}
	if r.Offset+1 > t.offsets[tp] {
		t.offsets[tp] = r.Offset + 1
	}
}

func (p *Processor[S, C, E]) processBatch(ctx context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record) error {
	start := time.Now()
	// The transaction is finished even when ctx is cancelled meanwhile:
	// shutting down must not leave it open until the broker times it out.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	t := &txn[S]{states: map[string]stagedState[S]{}, dedup: map[string][]byte{}, offsets: map[store.TopicPartition]int64{}}
	produce := func(r *kgo.Record) { sess.Produce(tctx, r, t.promise) }
	for _, r := range recs {
		if err := p.handle(t, r, produce); err != nil {
			if _, aerr := sess.End(tctx, kgo.TryAbort); aerr != nil {
				return fmt.Errorf("abort after %w: %w", err, aerr)
			}
			return err
		}
	}
	abort := func(reason error) error {
		p.log.Warn("aborting transaction", "commands", len(recs), "reason", reason)
		_, err := sess.End(tctx, kgo.TryAbort)
		if err != nil {
			return fmt.Errorf("abort transaction: %w", err)
		}
		return nil
	}
	if err := sess.Client().Flush(tctx); err != nil {
		return fmt.Errorf("flush transaction: %w", err)
	}
	t.mu.Lock()
	failed := t.failed
	t.mu.Unlock()
	if failed != nil {
		return abort(failed)
	}
	if p.cfg.BeforeCommit != nil {
		if err := p.cfg.BeforeCommit(tctx); err != nil {
			return abort(err)
		}
	}
	committed, err := sess.End(tctx, kgo.TryCommit)
	if err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	if !committed {
		// A rebalance took partitions away mid-batch: the session has
		// rewound to the committed offsets, so the commands come back
		// to whoever owns them now. Nothing was staged in the store.
		p.log.Info("transaction aborted by a rebalance", "commands", len(recs))
		return nil
	}
	for tp, next := range t.offsets {
		if tp.Topic == p.topics.Changelog || tp.Topic == p.topics.Dedup {
			t.batch.SetOffset(tp.Topic, tp.Partition, next)
		}
	}
	if err := p.cfg.Store.Apply(&t.batch); err != nil {
		// The store is only a cache: losing this write means the next
		// restore reads it back from the changelog.
		return fmt.Errorf("apply committed batch to store: %w", err)
	}
	if p.cfg.OnCommit != nil {
		p.cfg.OnCommit(len(recs), time.Since(start))
	}
	return nil
}

// handle processes one command record into t, producing its output records.
func (p *Processor[S, C, E]) handle(t *txn[S], r *kgo.Record, produce func(*kgo.Record)) error {
	key := string(r.Key)
	msgID := header(r, HeaderMsgID)
	if msgID == "" {
		msgID = fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
	}
	idempotent := header(r, HeaderIdempotent) == "1"
	out := func(rec *kgo.Record) {
		rec.Partition = r.Partition
		produce(rec)
	}
	emitOutcome := func(o *Outcome) ([]byte, error) {
		b, _, err := p.outcome.Encode(*o)
		if err != nil {
			return nil, fmt.Errorf("encode outcome of %s: %w", msgID, err)
		}
		out(&kgo.Record{Topic: p.topics.Results, Key: r.Key, Value: b, Headers: []kgo.RecordHeader{{Key: HeaderMsgID, Value: []byte(msgID)}}})
		return b, nil
	}

	if idempotent {
		dk := dedupKey(r.Partition, msgID)
		prev, ok := t.dedup[dk]
		if !ok {
			var err error
			if prev, ok, err = p.cfg.Store.Get(dk); err != nil {
				return fmt.Errorf("load outcome of %s: %w", msgID, err)
			}
		}
		if ok {
			// A retry: answer with the first outcome, apply nothing.
			out(&kgo.Record{Topic: p.topics.Results, Key: r.Key, Value: prev, Headers: []kgo.RecordHeader{{Key: HeaderMsgID, Value: []byte(msgID)}}})
			return nil
		}
	}

	o := &Outcome{MsgID: msgID, Key: key}
	reject := func(rej *es.Rejection) error {
		o.Status, o.Rejection = StatusRejected, rej
		_, err := emitOutcome(o)
		return err
	}
	cmd, err := p.codecs.Command.Decode(r.Value)
	if err != nil {
		p.log.Warn("undecodable command", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "msgId", msgID, "err", err)
		return reject(&es.Rejection{Code: es.CodeMalformedCommand, Message: fmt.Sprintf("undecodable command: %v", err)})
	}
	if k := p.agg.Key(cmd); k != key {
		p.log.Warn("command key mismatch", "offset", r.Offset, "recordKey", key, "commandKey", k)
		return reject(&es.Rejection{Code: es.CodeMalformedCommand, Message: fmt.Sprintf("record key %q does not match the command's %q", key, k)})
	}
	var expected *int64
	if h := header(r, HeaderExpectedVersion); h != "" {
		v, err := strconv.ParseInt(h, 10, 64)
		if err != nil {
			return reject(&es.Rejection{Code: es.CodeMalformedCommand, Message: fmt.Sprintf("header %s: %q is not an integer", HeaderExpectedVersion, h)})
		}
		expected = &v
	}
	state, err := p.load(t, key)
	if err != nil {
		return err
	}
	before := p.agg.Version(state)
	next, events, rej := p.agg.Handle(state, cmd, expected)
	if rej != nil {
		o.Version = before
		if err := reject(rej); err != nil {
			return err
		}
	} else {
		o.Status = StatusAccepted
		o.Version = p.agg.Version(next)
		for i, e := range events {
			b, typ, err := p.codecs.Event.Encode(e)
			if err != nil {
				return fmt.Errorf("encode event %T of %s: %w", e, msgID, err)
			}
			o.Events = append(o.Events, EncodedEvent{Type: typ, Data: b})
			out(&kgo.Record{Topic: p.topics.Events, Key: r.Key, Value: b, Headers: []kgo.RecordHeader{
				{Key: HeaderMsgID, Value: []byte(msgID)},
				{Key: HeaderType, Value: []byte(typ)},
				{Key: HeaderVersion, Value: formatInt(before + int64(i) + 1)},
			}})
		}
		sk := statePrefix + key
		if p.agg.Exists(next) {
			b, _, err := p.codecs.State.Encode(next)
			if err != nil {
				return fmt.Errorf("encode state of %s: %w", key, err)
			}
			o.State = b
			t.batch.Put(sk, b)
			out(&kgo.Record{Topic: p.topics.Changelog, Key: r.Key, Value: b})
		} else {
			t.batch.Delete(sk)
			out(&kgo.Record{Topic: p.topics.Changelog, Key: r.Key}) // tombstone
		}
		t.states[key] = stagedState[S]{state: next}
		b, err := emitOutcome(o)
		if err != nil {
			return err
		}
		if idempotent {
			p.stageDedup(t, r, msgID, b, out)
		}
		return nil
	}
	if idempotent {
		b, _, err := p.outcome.Encode(*o)
		if err != nil {
			return err
		}
		p.stageDedup(t, r, msgID, b, out)
	}
	return nil
}

func (p *Processor[S, C, E]) stageDedup(t *txn[S], r *kgo.Record, msgID string, outcome []byte, out func(*kgo.Record)) {
	dk := dedupKey(r.Partition, msgID)
	t.dedup[dk] = outcome
	t.batch.Put(dk, outcome)
	out(&kgo.Record{Topic: p.topics.Dedup, Key: []byte(msgID), Value: outcome})
}

// load returns the current state of key: staged in this transaction, else
// from the store, else the zero state.
func (p *Processor[S, C, E]) load(t *txn[S], key string) (S, error) {
	if st, ok := t.states[key]; ok {
		return st.state, nil
	}
	var zero S
	b, ok, err := p.cfg.Store.Get(statePrefix + key)
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
