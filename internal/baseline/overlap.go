package baseline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// overlapSession is the loop with two transactions in flight (EOSConfig
// Overlap): a plain group consumer and two transactional producers that
// take batches in turn. Batch N+1 is produced, with its consumer offsets,
// while batch N's EndTxn is in flight on the other producer; N+1's commit
// is sent only once N's has succeeded, so offsets and outputs commit in the
// order of the input. Any failure (a commit, a produce, the group) ends the
// session: the transaction in flight is aborted and the next session goes
// on from the committed offsets, as a GroupTransactSession's does.
//
// Rebalances are held off while a batch is in flight (BlockRebalanceOnPoll)
// and let through once the pipeline has drained, so that no transaction
// commits offsets of a partition the member has lost.
func (l *eosLoop) overlapSession(ctx context.Context) error {
	cfg := l.cfg
	group := cfg.Service + "." + eosStage
	var wanted atomic.Bool
	common := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
	}
	cons, err := kgo.NewClient(append(append([]kgo.Opt{}, common...), append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(l.topics.Commands),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { wanted.Store(true) }),
	}, cfg.ClientOpts...)...)...)
	if err != nil {
		return fmt.Errorf("new consumer: %w", err)
	}
	defer func() {
		// Leaving the group waits for polled records to be let go.
		cons.AllowRebalance()
		cons.Close()
	}()
	tv2, err := eskafka.TransactionVersion2(ctx, cons)
	if err != nil {
		return fmt.Errorf("read the cluster's transaction version: %w", err)
	}
	l.tv2 = tv2
	versions := eskafka.OffsetCommitVersions(tv2)
	var prods [2]*kgo.Client
	var txnIDs [2]string
	for i := range prods {
		txnID := fmt.Sprintf("%s.%s.%c", group, cfg.InstanceID, 'a'+i)
		txnIDs[i] = txnID
		p, err := kgo.NewClient(append(append([]kgo.Opt{}, common...), append([]kgo.Opt{
			kgo.TransactionalID(txnID),
			kgo.TransactionTimeout(20 * time.Second),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.MaxVersions(versions),
		}, cfg.ClientOpts...)...)...)
		if err != nil {
			return fmt.Errorf("new transactional producer %s: %w", txnID, err)
		}
		defer p.Close()
		if _, _, err := p.ProducerID(ctx); err != nil {
			return fmt.Errorf("initialise transactional producer %s: %w", txnID, err)
		}
		prods[i] = p
	}
	if !l.ready {
		l.ready = true
		l.log.Info("ready", "consumes", l.topics.Commands, "group", group, "overlap", true)
		if cfg.Ready != nil {
			cfg.Ready()
		}
	}

	// The commit in flight: its producer and the result of its EndTxn.
	var prev *ending
	drain := func() error {
		if prev == nil {
			return nil
		}
		err := prev.wait()
		if err == nil {
			l.txns++
			l.records += int64(prev.records)
		}
		prev = nil
		return err
	}
	// A transaction begun is finished even when ctx ends meanwhile.
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer func() {
		if prev != nil {
			_ = drain()
		}
	}()
	next := 0
	for {
		pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fetches := cons.PollRecords(pctx, cfg.MaxBatch)
		pcancel()
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errors.New("client closed")
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				l.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		recs := fetches.Records()
		if len(recs) == 0 || wanted.Load() {
			if err := drain(); err != nil {
				return err
			}
			if len(recs) == 0 {
				wanted.Store(false)
				cons.AllowRebalance()
				continue
			}
		}
		p, txnID := prods[next], txnIDs[next]
		next = 1 - next
		abort := func(reason error) error {
			if err := p.EndTransaction(tctx, kgo.TryAbort); err != nil {
				return fmt.Errorf("abort after %w: %w", reason, err)
			}
			return reason
		}
		if err := l.produceBatch(tctx, p, txnID, cons, group, recs); err != nil {
			_ = drain()
			return abort(err)
		}
		// Batch N+1's commit waits for N's: outputs and offsets then
		// commit in order, and N+1 is aborted when N failed.
		if err := drain(); err != nil {
			return abort(err)
		}
		e := &ending{records: len(recs), done: make(chan struct{})}
		go func() {
			defer close(e.done)
			e.err = p.EndTransaction(tctx, kgo.TryCommit)
		}()
		prev = e
		if wanted.Load() {
			if err := drain(); err != nil {
				return err
			}
			wanted.Store(false)
			cons.AllowRebalance()
		}
	}
}

// ending is a commit in flight.
type ending struct {
	records int
	done    chan struct{}
	err     error
}

func (e *ending) wait() error {
	<-e.done
	if e.err != nil {
		return fmt.Errorf("commit transaction: %w", e.err)
	}
	return nil
}

// produceBatch begins a transaction on p holding, for each record, an
// event and an outcome, and the group's offsets past recs, and waits until
// the broker has them all.
func (l *eosLoop) produceBatch(ctx context.Context, p *kgo.Client, txnID string, cons *kgo.Client, group string, recs []*kgo.Record) error {
	if err := p.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	var failed firstError
	if err := l.produceOutputs(recs, func(r *kgo.Record) { p.Produce(ctx, r, failed.promise) }); err != nil {
		return err
	}
	offsets := map[int32]int64{}
	for _, r := range recs {
		offsets[r.Partition] = r.Offset + 1
	}
	// The outputs reach the broker first: under transaction version 2
	// their produce is what opens the transaction, which the offsets then
	// join.
	if err := p.Flush(ctx); err != nil {
		return fmt.Errorf("flush transaction: %w", err)
	}
	if err := failed.get(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	return eskafka.CommitOffsetsInTxn(ctx, p, txnID, cons, group, map[string]map[int32]int64{l.topics.Commands: offsets}, l.tv2)
}
