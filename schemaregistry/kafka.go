package schemaregistry

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookscatalog/catalog/avro"
)

// Registry is the registry kept in a compacted Kafka topic. Build one with
// New; it is safe for concurrent use.
type Registry struct {
	topic string
	prod  *kgo.Client  // produces and administers
	cons  *kgo.Client  // reads the topic's partition 0, read_uncommitted, to the end
	adm   *kadm.Client // on cons: its metadata knows the topic from the start
	log   *slog.Logger

	mu      sync.RWMutex
	schemas map[uint64]string
	// invalid and deleted say why a key has no schema, for the error of
	// its Lookup, each for at most maxExplained keys (see explain).
	invalid   map[uint64]error // why the last record under a key without a schema was skipped
	deleted   map[uint64]int64 // the offset of the tombstone that removed a key's schema
	started   uint64           // catch-ups started
	completed uint64           // the start number of the last catch-up that completed
	readTo    int64            // the offset that catch-up read to

	// mine holds the schemas this registry registered (or found there
	// when it did): written again if the topic is recreated.
	mine map[uint64]string
	// id and next are the topic read and the next offset to read of
	// it; the catch-up holding sem owns them.
	id kadm.TopicID

	sem  chan struct{} // held by the one catch-up running
	next int64         // next offset to read; guarded by sem
}

type options struct {
	rf         int16
	clientOpts []kgo.Opt
	log        *slog.Logger
	noCreate   bool
}

// Option configures New.
type Option func(*options)

// WithReplicationFactor sets the replication factor the topic is created
// with (default -1: the broker's default).
func WithReplicationFactor(n int16) Option { return func(o *options) { o.rf = n } }

// WithClientOpts adds franz-go options (TLS, SASL, client id…) to the
// registry's clients.
func WithClientOpts(opts ...kgo.Opt) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// WithLogger sets the logger of skipped and conflicting records (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithExistingTopic makes New fail with an error wrapping ErrNoTopic when
// the topic is missing, instead of creating it: an operator's tool pointed
// at the wrong cluster or service name should say so, not leave an empty
// registry topic behind.
func WithExistingTopic() Option { return func(o *options) { o.noCreate = true } }

// ErrNoTopic: the registry topic does not exist (see WithExistingTopic).
var ErrNoTopic = errors.New("schemaregistry: no such topic")

// New connects to brokers, creates the registry topic if it is missing
// (1 partition, cleanup.policy=compact, retention.ms=-1), checks it if it
// exists (1 partition, cleanup.policy=compact; otherwise an error), and
// reads it to its end. Close it when done.
func New(ctx context.Context, brokers []string, topic string, opts ...Option) (*Registry, error) {
	o := options{rf: -1, log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if topic == "" {
		return nil, errors.New("schemaregistry: empty topic name")
	}
	prod, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, o.clientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("schemaregistry: client: %w", err)
	}
	if err := ensureTopic(ctx, prod, topic, o.rf, !o.noCreate); err != nil {
		prod.Close()
		return nil, err
	}
	cons, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		// Read uncommitted, to the high watermark: nobody writes the
		// registry in a transaction, and a transaction left open on it
		// (by a crashed or hostile producer) would otherwise hold the
		// last stable offset back for up to transaction.max.timeout.ms,
		// and every schema registered meanwhile would be unknown, the
		// records written with it rejected for good. What an aborted
		// transaction held is checked like any record: a schema valid
		// for its fingerprint, or skipped.
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		// Without control records, a transaction marker at the tail
		// would never arrive and the end would never be reached.
		kgo.KeepControlRecords(),
	}, o.clientOpts...)...)
	if err != nil {
		prod.Close()
		return nil, fmt.Errorf("schemaregistry: consumer: %w", err)
	}
	r := &Registry{
		topic: topic, prod: prod, cons: cons, adm: kadm.NewClient(cons), log: o.log.With("topic", topic),
		schemas: map[uint64]string{}, invalid: map[uint64]error{}, deleted: map[uint64]int64{}, mine: map[uint64]string{}, sem: make(chan struct{}, 1),
	}
	if err := r.CatchUp(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close closes the registry's clients.
func (r *Registry) Close() {
	r.cons.Close()
	r.prod.Close()
}

// Topic returns the registry topic's name.
func (r *Registry) Topic() string { return r.topic }

// Register implements avro.Registry: it writes the schema unless the topic
// has it already, and returns its fingerprint once the broker acknowledged
// the write. A different JSON under the same fingerprint is ErrConflict.
func (r *Registry) Register(ctx context.Context, schemaJSON string) (uint64, error) {
	fp, err := parse(schemaJSON)
	if err != nil {
		return 0, err
	}
	if done, err := r.registered(fp, schemaJSON); done || err != nil {
		return fp, err
	}
	if err := r.CatchUp(ctx); err != nil {
		return 0, err
	}
	if done, err := r.registered(fp, schemaJSON); done || err != nil {
		return fp, err
	}
	rec := r.record(fp, schemaJSON)
	if err := r.produce(ctx, rec); err != nil {
		return 0, fmt.Errorf("schemaregistry: write schema %s to %s: %w", avro.FormatFingerprint(fp), r.topic, err)
	}
	r.mu.Lock()
	r.mine[fp] = schemaJSON
	if _, ok := r.schemas[fp]; !ok {
		r.schemas[fp] = schemaJSON
		delete(r.invalid, fp)
		delete(r.deleted, fp)
	}
	r.mu.Unlock()
	return fp, nil
}

// registered reports whether fp is known with schemaJSON, or an error if it
// is known with another JSON.
func (r *Registry) registered(fp uint64, schemaJSON string) (bool, error) {
	r.mu.RLock()
	have, ok := r.schemas[fp]
	r.mu.RUnlock()
	if !ok {
		return false, nil
	}
	if !sameJSON(have, schemaJSON) {
		return false, conflict(fp, have)
	}
	r.mu.Lock()
	r.mine[fp] = have
	r.mu.Unlock()
	return true, nil
}

// Lookup implements avro.Registry: the schema of fp, catching up on the
// topic first if fp is not known yet; an error wrapping avro.ErrUnknownSchema
// if it is still unknown then.
func (r *Registry) Lookup(ctx context.Context, fp uint64) (string, error) {
	r.mu.RLock()
	js, ok := r.schemas[fp]
	seq := r.started
	r.mu.RUnlock()
	if ok {
		return js, nil
	}
	if err := r.catchUpAfter(ctx, seq); err != nil {
		return "", err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if js, ok := r.schemas[fp]; ok {
		return js, nil
	}
	return "", r.unknown(fp)
}

// unknown returns the error for a fingerprint without a schema, saying why
// as far as the topic tells; the caller holds mu.
func (r *Registry) unknown(fp uint64) error {
	if err := r.invalid[fp]; err != nil {
		return fmt.Errorf("%w: %s: the registry topic %s has only an invalid record for it: %w", avro.ErrUnknownSchema, avro.FormatFingerprint(fp), r.topic, err)
	}
	if off, ok := r.deleted[fp]; ok {
		return fmt.Errorf("%w: %s was deleted from the registry topic %s (tombstone at offset %d)", avro.ErrUnknownSchema, avro.FormatFingerprint(fp), r.topic, off)
	}
	return fmt.Errorf("%w: %s is not in the registry topic %s (read to offset %d)", avro.ErrUnknownSchema, avro.FormatFingerprint(fp), r.topic, r.readTo)
}

// Delete removes a schema from the registry: it writes a tombstone for fp
// and returns once the broker acknowledged it. Every registry reads the
// tombstone as "this fingerprint has no schema", at start and when it next
// catches up. It is for an operator to remove a schema registered by
// mistake (one that keeps a service from starting because its own schema
// cannot read what that one would have written); records written with the
// schema can no longer be read once it is gone. A fingerprint the topic does
// not hold (or no longer holds) is refused with an error wrapping
// avro.ErrUnknownSchema; one held only by an invalid record can be deleted,
// which removes that record at the next compaction, as long as the registry
// remembers the record (at most maxExplained invalid ones, the latest
// among them).
func (r *Registry) Delete(ctx context.Context, fp uint64) error {
	if err := r.CatchUp(ctx); err != nil {
		return fmt.Errorf("schemaregistry: delete %s: %w", avro.FormatFingerprint(fp), err)
	}
	r.mu.RLock()
	_, valid := r.schemas[fp]
	_, invalid := r.invalid[fp]
	var err error
	if !valid && !invalid {
		err = r.unknown(fp)
	}
	r.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("schemaregistry: delete: %w", err)
	}
	rec := &kgo.Record{Topic: r.topic, Partition: 0, Key: Key(fp), Value: nil}
	if err := r.produce(ctx, rec); err != nil {
		return fmt.Errorf("schemaregistry: write tombstone for %s to %s: %w", avro.FormatFingerprint(fp), r.topic, err)
	}
	r.mu.Lock()
	r.forget(fp, rec.Offset)
	r.mu.Unlock()
	return nil
}

// All implements avro.Registry.
func (r *Registry) All(ctx context.Context) (map[uint64]string, error) {
	if err := r.CatchUp(ctx); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return maps.Clone(r.schemas), nil
}

// CatchUp reads the topic up to its last stable offset as of the call.
func (r *Registry) CatchUp(ctx context.Context) error {
	r.mu.RLock()
	seq := r.started
	r.mu.RUnlock()
	return r.catchUpAfter(ctx, seq)
}

// catchUpAfter makes sure that a catch-up started after the seq-th one has
// completed: it waits for the one running, and runs one itself unless that
// one started late enough.
func (r *Registry) catchUpAfter(ctx context.Context, seq uint64) error {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("schemaregistry: catch up on %s: %w", r.topic, ctx.Err())
	}
	defer func() { <-r.sem }()
	r.mu.Lock()
	if r.completed > seq {
		r.mu.Unlock()
		return nil
	}
	r.started++
	mine := r.started
	r.mu.Unlock()
	if err := r.catchUp(ctx); err != nil {
		return fmt.Errorf("schemaregistry: catch up on %s: %w", r.topic, err)
	}
	r.mu.Lock()
	r.completed = mine
	r.readTo = r.next
	r.mu.Unlock()
	return nil
}

// catchUp reads to the end offset (the high watermark); the caller holds
// sem.
func (r *Registry) catchUp(ctx context.Context) error {
	details, err := r.adm.ListTopics(ctx, r.topic)
	if err == nil {
		err = details.Error()
	}
	if err != nil {
		return fmt.Errorf("look the topic up: %w", err)
	}
	end, err := r.endOffset(ctx)
	if err != nil {
		return err
	}
	id := details[r.topic].ID
	if r.id == (kadm.TopicID{}) {
		r.id = id
	}
	if id != r.id || end < r.next {
		// The topic was deleted and created again: what was read of the
		// old one says nothing of the new one, which may lack schemas
		// that records already use. Read it from the start, and write
		// this registry's own schemas again first, so that what it
		// wrote (and what it writes with them) stays readable.
		r.log.Warn("the registry topic was recreated; reading it again from the start and writing this instance's schemas again",
			"topic_id", id.String(), "was", r.id.String(), "end", end, "read_to", r.next)
		r.mu.Lock()
		clear(r.schemas)
		clear(r.invalid)
		clear(r.deleted)
		mine := maps.Clone(r.mine)
		r.mu.Unlock()
		r.id, r.next = id, 0
		// franz-go keeps failing a recreated topic (UNKNOWN_TOPIC_ID)
		// until it is purged from the client and added again.
		r.prod.PurgeTopicsFromProducing(r.topic)
		r.cons.PurgeTopicsFromConsuming(r.topic)
		r.cons.AddConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: {0: kgo.NewOffset().AtStart()}})
		for fp, js := range mine {
			if err := r.writeAgain(ctx, fp, js); err != nil {
				return err
			}
		}
		if end, err = r.endOffset(ctx); err != nil {
			return err
		}
	}
	for r.next < end {
		fetches := r.cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var errs []error
		fetches.EachError(func(t string, p int32, err error) {
			if tl, ok := errors.AsType[*kgo.ErrDecompressTooLarge](err); ok {
				// The client stops fetching the topic at such a
				// batch (a few KiB of zstd can hold gigabytes)
				// until moved past it: skipped, like any record
				// that is not a schema.
				r.log.Warn("skipping a registry batch that decompresses past the client's bound (MaxDecompressBatchBytes)",
					"partition", tl.Partition, "offset", tl.Offset, "next_offset", tl.NextOffset)
				r.cons.SetOffsets(map[string]map[int32]kgo.EpochOffset{tl.Topic: {tl.Partition: {Epoch: tl.Epoch, Offset: tl.NextOffset}}})
				r.next = max(r.next, tl.NextOffset)
				return
			}
			errs = append(errs, fmt.Errorf("fetch %s/%d: %w", t, p, err))
		})
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			if rec.Offset >= r.next {
				r.next = rec.Offset + 1
			}
			if !rec.Attrs.IsControl() {
				r.apply(rec)
			}
		})
	}
	return nil
}

// record is the registry record of a schema.
func (r *Registry) record(fp uint64, schemaJSON string) *kgo.Record {
	return &kgo.Record{Topic: r.topic, Partition: 0, Key: Key(fp), Value: []byte(schemaJSON)}
}

// writeAgain writes a schema to a recreated topic, waiting for the
// producer to learn the new topic.
func (r *Registry) writeAgain(ctx context.Context, fp uint64, js string) error {
	rec := r.record(fp, js)
	for {
		err := r.produce(ctx, rec)
		if err == nil {
			return nil
		}
		if !errors.Is(err, kerr.UnknownTopicID) && !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("write schema %s again: %w", avro.FormatFingerprint(fp), err)
		}
		r.prod.PurgeTopicsFromProducing(r.topic)
		select {
		case <-ctx.Done():
			return fmt.Errorf("write schema %s again: %w", avro.FormatFingerprint(fp), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// produce writes rec and waits for the broker's acknowledgement at most as
// long as ctx allows: franz-go's idempotent producer does not fail a record
// already sent until a broker answers, so ProduceSync would wait for as long
// as a broker that keeps its connections open does not answer (frozen, or
// cut off), past any deadline. Once ctx has ended, the record may still be
// written; the error says so. TryProduce: with the producer's buffer full,
// fail at once rather than block past ctx.
func (r *Registry) produce(ctx context.Context, rec *kgo.Record) error {
	done := make(chan error, 1)
	r.prod.TryProduce(ctx, rec, func(_ *kgo.Record, err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("not acknowledged by the broker in time, and may still be written: %w", ctx.Err())
	}
}

// endOffset returns the end offset (the high watermark) of the topic.
func (r *Registry) endOffset(ctx context.Context) (int64, error) {
	offsets, err := r.adm.ListEndOffsets(ctx, r.topic)
	if err != nil {
		return 0, fmt.Errorf("list end offset: %w", err)
	}
	o, ok := offsets.Lookup(r.topic, 0)
	if !ok {
		return 0, errors.New("list end offset: no answer for partition 0")
	}
	if o.Err != nil {
		return 0, fmt.Errorf("list end offset: %w", o.Err)
	}
	return o.Offset, nil
}

// apply takes one registry record in. A record that is not valid is
// skipped and logged, never an error: one bad record written by anyone must
// not keep the service from starting or from reading the records after it.
func (r *Registry) apply(rec *kgo.Record) {
	fp, err := ParseKey(rec.Key)
	if err != nil {
		r.skip(rec, err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Value == nil {
		// An operator removed the schema (Registry.Delete).
		if _, ok := r.schemas[fp]; ok {
			r.log.Info("schema deleted by a tombstone", "partition", rec.Partition, "offset", rec.Offset, "fingerprint", avro.FormatFingerprint(fp))
		}
		r.forget(fp, rec.Offset)
		return
	}
	js := string(rec.Value)
	got, err := parse(js)
	if err == nil && got != fp {
		err = fmt.Errorf("the schema's fingerprint is %s, not the key", avro.FormatFingerprint(got))
	}
	if err != nil {
		err = errors.New(clip(err.Error()))
		if have, ok := r.schemas[fp]; ok {
			r.skip(rec, err)
			r.rewrite(fp, have, rec.Offset)
			return
		}
		delete(r.deleted, fp)
		explain(r.invalid, fp, fmt.Errorf("invalid record at offset %d: %w", rec.Offset, err))
		r.skip(rec, err)
		return
	}
	if have, ok := r.schemas[fp]; ok {
		if !sameJSON(have, js) {
			r.log.Warn("registry record conflicts with an earlier one for the same fingerprint; keeping the earlier (their canonical forms are equal)",
				"partition", rec.Partition, "offset", rec.Offset, "fingerprint", avro.FormatFingerprint(fp))
			r.rewrite(fp, have, rec.Offset)
		}
		return
	}
	r.schemas[fp] = js
	delete(r.invalid, fp)
	delete(r.deleted, fp)
}

// rewrite writes the schema held for fp again, after a record at offset
// that is invalid or differs from it: the earlier record wins for every
// registry that reads the topic from the start, but compaction keeps only
// a key's last record, and would leave the bad one in its place, losing
// the schema (or changing its JSON) for the registries started after it.
// The write is not waited for; the caller holds mu.
func (r *Registry) rewrite(fp uint64, schemaJSON string, offset int64) {
	r.log.Error("a registry record after a schema would replace it once the topic is compacted; writing the schema again",
		"offset", offset, "fingerprint", avro.FormatFingerprint(fp))
	rec := r.record(fp, schemaJSON)
	r.prod.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
		if err != nil {
			r.log.Error("cannot write a schema again", "fingerprint", avro.FormatFingerprint(fp), "err", err)
		}
	})
}

// forget removes fp's schema after a tombstone at offset; the caller holds
// mu.
func (r *Registry) forget(fp uint64, offset int64) {
	delete(r.schemas, fp)
	delete(r.invalid, fp)
	explain(r.deleted, fp, offset)
}

// maxExplained bounds the keys without a schema that a registry remembers
// why of, per kind (an invalid record, a tombstone): anyone who can write
// the topic can add one per record, a tombstone or a few bytes under a new
// key, and the tombstones stay in memory long after compaction dropped
// them from the topic. A key forgotten (any other one, when a new one
// comes) is told as not in the topic.
const maxExplained = 1024

// explain records why fp has no schema in m, forgetting some other key's
// reason when m holds maxExplained already; the caller holds mu.
func explain[V any](m map[uint64]V, fp uint64, why V) {
	if _, ok := m[fp]; !ok && len(m) >= maxExplained {
		for k := range m { // any: only its error message is lost
			delete(m, k)
			break
		}
	}
	m[fp] = why
}

// skip logs a registry record that is not valid, with what an operator
// needs to find it (and delete it, if its key is a fingerprint).
func (r *Registry) skip(rec *kgo.Record, why error) {
	r.log.Warn("skipping invalid registry record", "partition", rec.Partition, "offset", rec.Offset,
		"key", clip(hex.EncodeToString(rec.Key)), "value_bytes", len(rec.Value), "err", why)
}

// maxReason bounds what a log line or a kept error quotes of a record: a
// parser's message may echo a large part of a hostile value.
const maxReason = 256

// clip shortens s to maxReason bytes (at a rune boundary).
func clip(s string) string {
	if len(s) <= maxReason {
		return s
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ensureTopic creates the topic if it is missing (unless create is false:
// then a missing topic is ErrNoTopic) and checks it.
func ensureTopic(ctx context.Context, cl *kgo.Client, topic string, rf int16, create bool) error {
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("schemaregistry: list topics: %w", err)
	}
	d, ok := details[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		if !create {
			return fmt.Errorf("%w: %s", ErrNoTopic, topic)
		}
		cfg := map[string]*string{
			"cleanup.policy": kadm.StringPtr("compact"),
			"retention.ms":   kadm.StringPtr("-1"),
		}
		if rf >= 3 {
			// As the service's other topics (eskafka.MinInsyncReplicas):
			// a schema acknowledged on one broker only could be lost.
			cfg["min.insync.replicas"] = kadm.StringPtr("2")
		}
		resp, err := adm.CreateTopic(ctx, 1, rf, cfg, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("schemaregistry: create topic %s: %w", topic, err)
		}
		// Created (by us or, meanwhile, another instance): wait until
		// it is visible, and check it.
	} else if d.Err != nil {
		return fmt.Errorf("schemaregistry: describe topic %s: %w", topic, d.Err)
	}
	// A created topic's metadata reaches every broker a moment later,
	// and the reader that follows may ask any of them.
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		cl.PurgeTopicsFromClient(topic) // no cached "unknown topic"
		err := knownEverywhere(ctx, cl, topic)
		if err == nil {
			err = checkTopic(ctx, adm, topic)
		}
		if !errors.Is(err, errMissing) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waiting for it: %w)", err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

var errMissing = errors.New("schemaregistry: topic missing")

// knownEverywhere returns nil once every broker of the cluster knows topic
// and the leader of its partition, else an error wrapping errMissing.
func knownEverywhere(ctx context.Context, cl *kgo.Client, topic string) error {
	brokers, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: list brokers: %w", errMissing, topic, err)
	}
	for _, b := range brokers.Brokers {
		req := kmsg.NewPtrMetadataRequest()
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, t)
		resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
		if err != nil {
			return fmt.Errorf("%w: %s: ask broker %d: %w", errMissing, topic, b.NodeID, err)
		}
		for _, t := range resp.Topics {
			if t.ErrorCode != 0 || len(t.Partitions) == 0 || t.Partitions[0].Leader < 0 {
				return fmt.Errorf("%w: %s: broker %d does not know it yet", errMissing, topic, b.NodeID)
			}
		}
	}
	return nil
}

func checkTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("schemaregistry: list topics: %w", err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil || len(d.Partitions) == 0 {
		return fmt.Errorf("%w: %s", errMissing, topic)
	}
	var problems []string
	if n := len(d.Partitions); n != 1 {
		problems = append(problems, fmt.Sprintf("it has %d partitions, want 1", n))
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("schemaregistry: describe topic %s: %w", topic, err)
	}
	rc, err := configs.On(topic, nil)
	if err != nil {
		return fmt.Errorf("schemaregistry: describe topic %s: %w", topic, err)
	}
	policy := "delete" // Kafka's default
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if strings.ReplaceAll(policy, " ", "") != "compact" {
		problems = append(problems, fmt.Sprintf("its cleanup.policy is %s, want compact (schemas must be kept forever)", policy))
	}
	if len(problems) > 0 {
		return fmt.Errorf("schemaregistry: topic %s cannot be the schema registry: %s", topic, strings.Join(problems, "; "))
	}
	return nil
}
