package eskafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// transactor is how a lane's session consumes its inputs and commits its
// batches: one GroupTransactSession, one transaction at a time
// (sessionTransactor), or two transactional producers that take batches in
// turn (overlapTransactor, Config.Overlap).
type transactor interface {
	// poll returns what the consumer has fetched, up to n records.
	poll(ctx context.Context, n int) kgo.Fetches
	// skip moves the consumer past an input batch it cannot decompress.
	skip(tl *kgo.ErrDecompressTooLarge)
	// begin opens a transaction for the next batch.
	begin() error
	// produce sends r in the open transaction.
	produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
	// flush waits until the broker has every record produced.
	flush(ctx context.Context) error
	// abort aborts the open transaction and rewinds the consumer to the
	// committed offsets, so that the batch comes back. An error means
	// the session cannot go on.
	abort(ctx context.Context) error
	// commit commits the open transaction, with the consumer's offsets
	// past the batch, and calls finish exactly once with the result: before
	// it returns, or, overlapping, once the commit is through, before
	// the next batch commits or aborts. An error ends the session.
	commit(ctx context.Context, b commitBatch, finish func(committed bool, err error) error) error
	// overlay returns the table changes (store key -> value, nil for a
	// deletion) of the batch still committing, which the next batch
	// reads before the store; nil when none is.
	overlay() map[string][]byte
	// settle waits for the commit in flight, if any, to reach the store;
	// an error (the commit failed) ends the session.
	settle() error
	// idle is called when a poll returned nothing: a commit still in
	// flight is waited for, and rebalances held back are let through.
	idle() error
	// close waits for the commit in flight and closes the clients.
	close()
}

// commitBatch is what a transactor's commit needs to know of a batch.
type commitBatch struct {
	// recs are the batch's input records, and skipped the input batches
	// the consumer was moved past since the last transaction: the
	// consumer's offsets go past both.
	recs    []*kgo.Record
	skipped []*kgo.ErrDecompressTooLarge
	// staged are the batch's table changes (Tx.staged).
	staged map[string][]byte
}

// sessionTransactor commits one batch at a time in a GroupTransactSession,
// which rewinds on abort and aborts a batch whose partitions were revoked
// meanwhile.
type sessionTransactor struct {
	sess *kgo.GroupTransactSession
	log  interface{ Warn(string, ...any) }
}

func (t *sessionTransactor) poll(ctx context.Context, n int) kgo.Fetches {
	return t.sess.PollRecords(ctx, n)
}

func (t *sessionTransactor) skip(tl *kgo.ErrDecompressTooLarge) {
	t.sess.Client().SetOffsets(map[string]map[int32]kgo.EpochOffset{tl.Topic: {tl.Partition: {Epoch: tl.Epoch, Offset: tl.NextOffset}}})
}

func (t *sessionTransactor) begin() error { return t.sess.Begin() }

func (t *sessionTransactor) produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	t.sess.Produce(ctx, r, promise)
}

func (t *sessionTransactor) flush(ctx context.Context) error { return t.sess.Client().Flush(ctx) }

func (t *sessionTransactor) abort(ctx context.Context) error {
	_, err := t.sess.End(ctx, kgo.TryAbort)
	return err
}

func (t *sessionTransactor) commit(ctx context.Context, _ commitBatch, finish func(bool, error) error) error {
	ectx, cancel := context.WithTimeout(ctx, commitDeadline)
	defer cancel()
	committed, err := t.sess.End(ectx, kgo.TryCommit)
	if err != nil {
		err = stuck(ectx, "commit transaction", err)
	}
	return finish(committed, err)
}

func (t *sessionTransactor) overlay() map[string][]byte { return nil }

func (t *sessionTransactor) settle() error { return nil }

func (t *sessionTransactor) idle() error { return nil }

func (t *sessionTransactor) close() { closeBounded(t.sess.Close, t.log) }

// newSessionTransactor starts a lane's GroupTransactSession and
// initialises its producer id now, not at the first produce: this fences a
// predecessor with the lane's transactional id (this instance before a
// crash) and aborts its open transaction at once, rather than leaving it to
// time out while partitions wait for it.
func (l *lane) newSessionTransactor(ctx context.Context, gen uint64, limits map[string]int) (*sessionTransactor, error) {
	s := l.s
	opts := append(append(l.groupOpts(gen, func(map[string][]int32) {}), producerOpts(limits)...),
		kgo.TransactionalID(l.transactionalID()))
	sess, err := kgo.NewGroupTransactSession(s.cfg.clientOpts(opts...)...)
	if err != nil {
		return nil, fmt.Errorf("new transactional session: %w", err)
	}
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		closeBounded(sess.Close, l.log)
		return nil, stuck(ctx, "initialise transactional producer "+l.transactionalID(), err)
	}
	return &sessionTransactor{sess: sess, log: l.log}, nil
}

// groupOpts are the options of a lane's group consumer in session gen;
// moved is told of the partitions assigned, revoked or lost, as the lane is.
func (l *lane) groupOpts(gen uint64, moved func(map[string][]int32)) []kgo.Opt {
	s := l.s
	laneCfg := s.cfg
	laneCfg.InstanceID = l.instanceID
	return []kgo.Opt{
		kgo.ConsumerGroup(s.Group()),
		kgo.ConsumeTopics(s.spec.Inputs...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// The callbacks of a session given up on (its client left to
		// close in the background) must not touch what the next
		// session owns: they apply only while theirs is current.
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			moved(m)
			l.ifCurrent(gen, func() { l.onAssigned(m) })
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			moved(m)
			l.ifCurrent(gen, func() { l.onRevoked(m) })
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			moved(m)
			l.ifCurrent(gen, func() { l.onRevoked(m) })
		}),
		kgo.Balancers(newOwnershipBalancer(laneCfg, s.spec.Inputs, l.log, func(owners map[int32]string, mine map[string][]int32) {
			l.ifCurrent(gen, func() { l.setOwners(owners, mine) })
		})),
		// Static membership: an instance restarted after a crash takes
		// its partitions back at once instead of waiting out the
		// session of its dead predecessor.
		kgo.InstanceID(l.instanceID),
		kgo.SessionTimeout(s.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(time.Second, s.cfg.SessionTimeout/3)),
	}
}

// producerOpts are the options of a lane's transactional producer, given
// the max.message.bytes of the topics it writes.
func producerOpts(limits map[string]int) []kgo.Opt {
	return []kgo.Opt{
		// Outputs name their partition: a table change goes to the
		// partition of its input, an emitted record to its key's.
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// Batches commit in milliseconds; a transaction left open by a
		// crashed instance blocks readers of its partitions until this
		// timeout aborts it.
		kgo.TransactionTimeout(transactionTimeout),
		// Batches are cut under each topic's max.message.bytes, so
		// that only a record too large on its own can be refused.
		BatchMaxBytes(limits),
	}
}
