package baseline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// Defaults of EOSConfig, the service's own (internal/config, eskafka.Config).
const (
	DefaultPartitions = 6
	DefaultMaxBatch   = 1000
	DefaultInstanceID = "0"
)

// EOSConfig configures RunEOS.
type EOSConfig struct {
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// Service prefixes the topics, as SERVICE_NAME does the service's:
	// the loop consumes {Service}.authors.commands and writes
	// {Service}.authors.events and {Service}.authors.results.
	Service string
	// Partitions is the partition count the topics are created with when
	// missing, and must have when they exist (default 6).
	Partitions int32
	// ReplicationFactor of the topics created (default -1: the broker's).
	ReplicationFactor int16
	// InstanceID keeps the transactional id stable across restarts, as
	// the service's instance id does, so that a restarted loop fences its
	// predecessor's open transaction at once (default "0").
	InstanceID string
	// MaxBatch bounds the records of one transaction (default 1000, as
	// the service's stages).
	MaxBatch int
	// ClientOpts are appended to the options of every Kafka client.
	ClientOpts []kgo.Opt
	// Logger receives the logs (default slog.Default()).
	Logger *slog.Logger
	// Overlap runs the loop with two transactions in flight: two
	// transactional producers taking batches in turn, each batch's
	// produce overlapping the previous one's commit (see
	// eosLoop.overlapSession). An experiment: whether overlapping
	// transactions lifts the one-transaction-at-a-time limit on a broker.
	Overlap bool
	// Ready, when set, is called once the topics exist and the first
	// transactional session has its producer id: from then on the loop
	// processes commands as soon as the group has assigned partitions.
	Ready func()
}

func (c *EOSConfig) defaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("no brokers")
	}
	if c.Service == "" {
		return errors.New("no service name")
	}
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.InstanceID == "" {
		c.InstanceID = DefaultInstanceID
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// eosStage names the loop in its consumer group and transactional id, as a
// stage's name does: {service}.baseline-eos[.{instance}].
const eosStage = "baseline-eos"

// RunEOS runs the bare exactly-once loop until ctx is done: the least any
// exactly-once command processor on Kafka must do, and so the limit the
// service's processor is measured against on the same broker.
//
// What it does, per batch: poll what has arrived on
// {Service}.authors.commands (up to MaxBatch records, read_committed, in the
// consumer group {Service}.baseline-eos), begin a transaction, produce for
// each record one event (the command's key, value and headers, to
// {Service}.authors.events) and one accepted outcome (an Avro
// eskafka.Outcome with the record's msgId header, to
// {Service}.authors.results: what catalog loadgen -mode kafka waits for),
// both to the record's partition, and commit them with the consumer offsets
// (GroupTransactSession.End). Its clients are set up as the service's
// stages set theirs (eskafka's Stage.runSession): a stable transactional
// id, read_committed, static partitions for outputs, the same session,
// heartbeat and transaction timeouts, MetadataMinAge 100 ms, the producer id
// initialised before the first batch.
//
// What it does not do: decode commands, hold state (no store, no changelog,
// no restore), decide anything (every command is accepted, an update as
// much as a create), remember idempotency keys, check sizes, dead-letter
// or isolate bad records, report ownership, health or metrics, or follow
// the outcomes. The topics it creates are the three it uses, with the
// service's settings.
//
// A failed session is closed and replaced after a second, as a stage's
// is; a transaction aborted by a rebalance is dropped, its records
// coming back from the committed offsets.
func RunEOS(ctx context.Context, cfg EOSConfig) error {
	if err := cfg.defaults(); err != nil {
		return fmt.Errorf("baseline eos: %w", err)
	}
	topics := eskafka.AggregateTopics(cfg.Service, "authors")
	if err := ensureTopics(ctx, &cfg, topics); err != nil {
		return err
	}
	reg, err := schemaregistry.New(ctx, cfg.Brokers, cfg.Service+".schemas",
		schemaregistry.WithClientOpts(cfg.ClientOpts...), schemaregistry.WithLogger(cfg.Logger))
	if err != nil {
		return fmt.Errorf("baseline eos: schema registry: %w", err)
	}
	defer reg.Close()
	// The namespace internal/service and the load generator give
	// outcomes: the loader decodes them with its own codec.
	outcomes, err := avro.NewValue[eskafka.Outcome](reg, "catalog.runtime")
	if err != nil {
		return fmt.Errorf("baseline eos: outcome codec: %w", err)
	}
	if err := avro.Register(ctx, outcomes); err != nil {
		return fmt.Errorf("baseline eos: register the outcome schema: %w", err)
	}
	l := &eosLoop{cfg: &cfg, topics: topics, outcomes: outcomes, log: cfg.Logger.With("stage", eosStage)}
	defer func() {
		l.log.Info("stopped", "transactions", l.txns, "records", l.records, "meanBatch", l.meanBatch())
	}()
	backoff := time.Second
	for {
		run := l.session
		if cfg.Overlap {
			run = l.overlapSession
		}
		err := run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		l.log.Error("session failed; starting a new one", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// ensureTopics creates the commands, events and results topics when
// missing, with the service's settings, and checks them when they exist.
func ensureTopics(ctx context.Context, cfg *EOSConfig, t eskafka.Topics) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("baseline eos: admin client: %w", err)
	}
	defer cl.Close()
	specs := slices.DeleteFunc(t.Specs(), func(s eskafka.TopicSpec) bool {
		return s.Name != t.Commands && s.Name != t.Events && s.Name != t.Results
	})
	if err := eskafka.EnsureTopics(ctx, cl, cfg.Partitions, cfg.ReplicationFactor, specs...); err != nil {
		return fmt.Errorf("baseline eos: topics: %w", err)
	}
	return nil
}

// eosLoop is one RunEOS: its settings and what it has done (counted by the
// one goroutine that runs the sessions).
type eosLoop struct {
	cfg      *EOSConfig
	topics   eskafka.Topics
	outcomes *avro.Value[eskafka.Outcome]
	log      *slog.Logger
	ready    bool
	// tv2: the cluster runs transaction version 2 (overlapped loop).
	tv2 bool

	txns, records int64
}

func (l *eosLoop) meanBatch() float64 {
	if l.txns == 0 {
		return 0
	}
	return float64(l.records) / float64(l.txns)
}

// session runs one GroupTransactSession until ctx is done (nil) or it
// fails.
func (l *eosLoop) session(ctx context.Context) error {
	cfg := l.cfg
	group := cfg.Service + "." + eosStage
	txnID := group + "." + cfg.InstanceID
	sess, err := kgo.NewGroupTransactSession(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.TransactionalID(txnID),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(l.topics.Commands),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// The service's stage settings (eskafka.Config defaults and
		// Stage.runSession), so that heartbeats, metadata refreshes
		// and transaction bookkeeping cost the broker the same.
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.TransactionTimeout(20 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
	}, cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("new transactional session: %w", err)
	}
	defer sess.Close()
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		return fmt.Errorf("initialise transactional producer %s: %w", txnID, err)
	}
	if !l.ready {
		l.ready = true
		l.log.Info("ready", "consumes", l.topics.Commands, "group", group, "transactionalId", txnID)
		if cfg.Ready != nil {
			cfg.Ready()
		}
	}
	for {
		fetches := sess.PollRecords(ctx, cfg.MaxBatch)
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errors.New("client closed")
		}
		fetches.EachError(func(t string, p int32, err error) {
			l.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		if err := l.batch(ctx, sess, recs); err != nil {
			return err
		}
	}
}

// batch processes recs in one transaction.
func (l *eosLoop) batch(ctx context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record) error {
	// As a stage does: a transaction begun is finished even when ctx is
	// cancelled meanwhile, rather than left to time out.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	var failed firstError
	abort := func(reason error) error {
		if _, err := sess.End(tctx, kgo.TryAbort); err != nil {
			return fmt.Errorf("abort transaction after %w: %w", reason, err)
		}
		return reason
	}
	if err := l.produceOutputs(recs, func(r *kgo.Record) { sess.Produce(tctx, r, failed.promise) }); err != nil {
		return abort(err)
	}
	// Flushed before End, as a stage does, to see a refused produce
	// before committing.
	if err := sess.Client().Flush(tctx); err != nil {
		return fmt.Errorf("flush transaction: %w", err)
	}
	if err := failed.get(); err != nil {
		return abort(fmt.Errorf("produce: %w", err))
	}
	committed, err := sess.End(tctx, kgo.TryCommit)
	if err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	if !committed {
		l.log.Info("transaction aborted by a rebalance", "records", len(recs))
		return nil
	}
	l.txns++
	l.records += int64(len(recs))
	return nil
}

// produceOutputs produces, through produce, each record's event (its key,
// value and headers, to the events topic) and its accepted outcome (to the
// results topic), both to the record's partition.
func (l *eosLoop) produceOutputs(recs []*kgo.Record, produce func(*kgo.Record)) error {
	for _, r := range recs {
		var msgID []byte
		for _, h := range r.Headers {
			if h.Key == eskafka.HeaderMsgID {
				msgID = h.Value
			}
		}
		out, _, err := l.outcomes.Encode(eskafka.Outcome{MsgID: string(msgID), Key: string(r.Key), Status: eskafka.StatusAccepted, Version: 1})
		if err != nil {
			return fmt.Errorf("encode outcome: %w", err)
		}
		produce(&kgo.Record{Topic: l.topics.Events, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers})
		produce(&kgo.Record{Topic: l.topics.Results, Partition: r.Partition, Key: r.Key, Value: out,
			Headers: []kgo.RecordHeader{{Key: eskafka.HeaderMsgID, Value: msgID}}})
	}
	return nil
}

// firstError keeps the first error the promises of a transaction's
// produces report.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) promise(_ *kgo.Record, err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
