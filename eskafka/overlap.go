package eskafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// overlapSuffix ends the transactional id of a lane's second producer when
// transactions overlap (Config.Overlap); the first keeps the lane's id.
const overlapSuffix = ".overlap"

// overlapTransactor keeps two transactions of a lane in flight
// (Config.Overlap): a plain group consumer and two transactional producers
// that take batches in turn. Batch N+1 is decided, produced and given its
// consumer offsets while batch N's EndTxn is in flight on the other
// producer; N+1 reads its tables through N's changes (overlay), and its
// EndTxn is sent only once N's has committed and reached the store. So
// outputs, table changes and offsets commit in the order of the input, as
// one transaction at a time would commit them, and a batch decided on a
// batch that failed to commit is aborted with it: a failed commit ends the
// session, whose successor goes on from the committed offsets.
//
// Rebalances are held back while a batch is in flight (BlockRebalanceOnPoll)
// and let through once nothing is: no transaction commits the offsets of a
// partition the member has lost, and none is in flight when partitions
// move. The offsets go in with the member's generation (TxnOffsetCommit),
// so that the group coordinator refuses them from a member the group has
// moved on from: a zombie is fenced as under a GroupTransactSession.
type overlapTransactor struct {
	l     *lane
	group string
	cons  *kgo.Client
	prods [2]*kgo.Client
	ids   [2]string
	// tv2: the cluster runs transaction version 2 (CommitOffsetsInTxn).
	tv2 bool
	// cur is the producer of the open transaction.
	cur int
	// pending is the commit in flight; only the lane's goroutine
	// touches it.
	pending *pendingCommit
	// wanted is set when a rebalance waits for the lane to let it
	// through.
	wanted atomic.Bool
	// produced counts the records produced in the open transaction.
	produced int

	mu sync.Mutex
	// committed is, per input partition, where the group's committed
	// offset stands as far as this session knows: what an abort rewinds
	// the consumer to. A partition enters it with the first record
	// fetched from it (read_committed, the consumer started from the
	// committed offset, so whatever lies before that record is either
	// committed or not data), moves with each commit, and leaves it when
	// it is assigned or revoked.
	committed map[string]map[int32]int64
}

// pendingCommit is a batch whose EndTxn is in flight.
type pendingCommit struct {
	staged  map[string][]byte
	offsets map[string]map[int32]int64
	done    chan struct{}
	err     error
}

// newOverlapTransactor starts the consumer and the two producers of an
// overlapping session, and initialises both producers' ids, which fences
// their predecessors and aborts what they left open.
func (l *lane) newOverlapTransactor(ctx context.Context, gen uint64, limits map[string]int) (*overlapTransactor, error) {
	s := l.s
	// cur is 1 so that the first batch (begin) goes to the lane's own
	// transactional id.
	t := &overlapTransactor{l: l, group: s.Group(), cur: 1, committed: map[string]map[int32]int64{}}
	group := append(l.groupOpts(gen, t.forget),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) {
			t.wanted.Store(true)
			// An idle poll would hold the rebalance back until it
			// ends: end it now.
			l.ifCurrent(gen, l.wake)
		}),
	)
	cons, err := kgo.NewClient(s.cfg.clientOpts(group...)...)
	if err != nil {
		return nil, fmt.Errorf("new consumer: %w", err)
	}
	t.cons = cons
	tv2, err := TransactionVersion2(ctx, cons)
	if err != nil {
		t.close()
		return nil, stuck(ctx, "read the cluster's transaction version", err)
	}
	t.tv2 = tv2
	versions := OffsetCommitVersions(tv2)
	for i := range t.prods {
		t.ids[i] = l.transactionalID()
		if i == 1 {
			t.ids[i] += overlapSuffix
		}
		p, err := kgo.NewClient(s.cfg.clientOpts(append(producerOpts(limits),
			kgo.TransactionalID(t.ids[i]), kgo.MaxVersions(versions))...)...)
		if err != nil {
			t.close()
			return nil, fmt.Errorf("new transactional producer %s: %w", t.ids[i], err)
		}
		t.prods[i] = p
		if _, _, err := p.ProducerID(ctx); err != nil {
			t.close()
			return nil, stuck(ctx, "initialise transactional producer "+t.ids[i], err)
		}
	}
	return t, nil
}

// forget drops what the session knew of the committed offsets of the
// partitions in m, assigned or revoked: another member may have committed
// them since.
func (t *overlapTransactor) forget(m map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, parts := range m {
		for _, p := range parts {
			delete(t.committed[topic], p)
		}
	}
}

// fetched notes where the committed offsets stand for partitions first
// seen in recs.
func (t *overlapTransactor) fetched(recs []*kgo.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range recs {
		t.note(r.Topic, r.Partition, r.Offset)
	}
}

// note records offset as partition's committed position unless one is
// known; t.mu is held.
func (t *overlapTransactor) note(topic string, partition int32, offset int64) {
	parts := t.committed[topic]
	if parts == nil {
		parts = map[int32]int64{}
		t.committed[topic] = parts
	}
	if _, ok := parts[partition]; !ok {
		parts[partition] = offset
	}
}

func (t *overlapTransactor) poll(ctx context.Context, n int) kgo.Fetches {
	fetches := t.cons.PollRecords(ctx, n)
	t.fetched(fetches.Records())
	return fetches
}

func (t *overlapTransactor) skip(tl *kgo.ErrDecompressTooLarge) {
	t.mu.Lock()
	// Should the transaction that skips it abort, the batch comes back
	// and is skipped again.
	t.note(tl.Topic, tl.Partition, tl.Offset)
	t.mu.Unlock()
	t.cons.SetOffsets(map[string]map[int32]kgo.EpochOffset{tl.Topic: {tl.Partition: {Epoch: tl.Epoch, Offset: tl.NextOffset}}})
}

func (t *overlapTransactor) begin() error {
	t.cur = 1 - t.cur
	t.produced = 0
	if err := t.prods[t.cur].BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction on %s: %w", t.ids[t.cur], err)
	}
	return nil
}

func (t *overlapTransactor) produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	t.produced++
	t.prods[t.cur].Produce(ctx, r, promise)
}

// flush waits until the broker has the open transaction's records. A
// flush that took a request's timeout waited on a broker that stopped
// answering, until its producer asked the cluster where the leaders are
// now; the other producer's view is as old, so it asks too, rather than
// wait out the same timeout on its next batch (a frozen leader costs one
// timeout per stage, not one per producer).
func (t *overlapTransactor) flush(ctx context.Context) error {
	start := time.Now()
	err := t.prods[t.cur].Flush(ctx)
	if time.Since(start) >= requestTimeoutOverhead {
		t.prods[1-t.cur].ForceMetadataRefresh()
	}
	return err
}

// drain waits for the commit in flight, if any; its error, if it failed,
// ends the session.
func (t *overlapTransactor) drain() error {
	e := t.pending
	if e == nil {
		return nil
	}
	<-e.done
	t.pending = nil
	if e.err != nil {
		return e.err
	}
	t.advance(e.offsets)
	return nil
}

// advance notes offsets as committed: where an abort rewinds to.
func (t *overlapTransactor) advance(offsets map[string]map[int32]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, parts := range offsets {
		for p, off := range parts {
			if t.committed[topic] == nil {
				t.committed[topic] = map[int32]int64{}
			}
			t.committed[topic][p] = off
		}
	}
}

func (t *overlapTransactor) abort(ctx context.Context) error {
	drained := t.drain()
	p := t.prods[t.cur]
	err := p.AbortBufferedRecords(ctx)
	if err == nil {
		err = p.EndTransaction(ctx, kgo.TryAbort)
	}
	if drained != nil {
		return drained
	}
	if err != nil {
		return fmt.Errorf("abort transaction on %s: %w", t.ids[t.cur], err)
	}
	t.rewind()
	if t.wanted.Load() {
		return t.idle()
	}
	return nil
}

// rewind moves the consumer back to the committed offsets of the
// partitions it has fetched from: what the aborted batch took comes back.
func (t *overlapTransactor) rewind() {
	t.mu.Lock()
	to := map[string]map[int32]kgo.EpochOffset{}
	for topic, parts := range t.committed {
		to[topic] = map[int32]kgo.EpochOffset{}
		for p, off := range parts {
			to[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: off}
		}
	}
	t.mu.Unlock()
	t.cons.SetOffsets(to)
}

// offsetsPast returns, per partition of recs, the offset after its last
// record, and, for a batch skipped since, the offset past it.
func offsetsPast(recs []*kgo.Record, skipped []*kgo.ErrDecompressTooLarge) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	set := func(topic string, p int32, next int64) {
		if out[topic] == nil {
			out[topic] = map[int32]int64{}
		}
		out[topic][p] = max(out[topic][p], next)
	}
	for _, r := range recs {
		set(r.Topic, r.Partition, r.Offset+1)
	}
	for _, tl := range skipped {
		set(tl.Topic, tl.Partition, tl.NextOffset)
	}
	return out
}

func (t *overlapTransactor) commit(ctx context.Context, b commitBatch, finish func(bool, error) error) error {
	cur := t.cur
	p, id := t.prods[cur], t.ids[cur]
	offsets := offsetsPast(b.recs, b.skipped)
	// The commit outlives processBatch, whose context ends with it.
	ctx = context.WithoutCancel(ctx)
	if t.produced == 0 {
		return t.commitEmpty(ctx, p, id, offsets, finish)
	}
	fail := func(err error) error {
		actx, cancel := context.WithTimeout(ctx, commitDeadline)
		defer cancel()
		if aerr := p.EndTransaction(actx, kgo.TryAbort); aerr != nil {
			err = fmt.Errorf("%w; abort: %w", err, aerr)
		}
		return finish(false, err)
	}
	octx, cancel := context.WithTimeout(ctx, commitDeadline)
	err := CommitOffsetsInTxn(octx, p, id, t.cons, t.group, offsets, t.tv2)
	if err != nil {
		err = stuck(octx, "commit offsets in transaction", err)
	}
	cancel()
	if err != nil {
		if derr := t.drain(); derr != nil || !refusedByRebalance(err) {
			return fail(err)
		}
		// As a GroupTransactSession does: the batch is aborted and
		// comes back, and the session goes on (the member rejoins, or
		// has, with the group's next generation).
		actx, cancel := context.WithTimeout(ctx, commitDeadline)
		defer cancel()
		if aerr := p.EndTransaction(actx, kgo.TryAbort); aerr != nil {
			return finish(false, stuck(actx, "abort transaction on "+id, fmt.Errorf("%w; abort: %w", err, aerr)))
		}
		t.rewind()
		t.l.log.Info("the group refused the batch's offsets; aborted, it comes back", "err", err)
		if err := finish(false, nil); err != nil {
			return err
		}
		if t.wanted.Load() {
			return t.idle()
		}
		return nil
	}
	// This batch was decided on the one in flight: it commits after it,
	// and not at all if that one failed.
	if err := t.drain(); err != nil {
		return fail(fmt.Errorf("the batch before failed to commit: %w", err))
	}
	e := &pendingCommit{staged: b.staged, offsets: offsets, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		ectx, cancel := context.WithTimeout(ctx, commitDeadline)
		defer cancel()
		err := p.EndTransaction(ectx, kgo.TryCommit)
		if err != nil {
			err = stuck(ectx, "commit transaction on "+id, err)
		}
		e.err = finish(err == nil, err)
		if err == nil && e.err != nil {
			// Committed, but not applied to the store: the session
			// must start again (and restore) all the same.
			e.err = fmt.Errorf("after commit: %w", e.err)
		}
	}()
	t.pending = e
	if t.wanted.Load() {
		return t.idle()
	}
	return nil
}

func (t *overlapTransactor) overlay() map[string][]byte {
	if t.pending == nil {
		return nil
	}
	return t.pending.staged
}

func (t *overlapTransactor) settle() error { return t.drain() }

func (t *overlapTransactor) idle() error {
	if err := t.drain(); err != nil {
		return err
	}
	t.wanted.Store(false)
	t.cons.AllowRebalance()
	return nil
}

func (t *overlapTransactor) close() {
	_ = t.drain()
	if t.cons != nil {
		t.cons.AllowRebalance()
		closeBounded(t.cons.Close, t.l.log)
	}
	for _, p := range t.prods {
		if p != nil {
			closeBounded(p.Close, t.l.log)
		}
	}
}

// commitEmpty ends a transaction that produced nothing. franz-go ends such
// a transaction without an EndTxn, so offsets added to it would stay in a
// transaction open on the broker until it timed out: they are committed
// instead by the consumer, once the commit in flight is through, with the
// member's generation, which the group checks as it checks a
// TxnOffsetCommit's. The batch wrote nothing, so committing its offsets
// alone is all its transaction would have done.
func (t *overlapTransactor) commitEmpty(ctx context.Context, p *kgo.Client, id string, offsets map[string]map[int32]int64, finish func(bool, error) error) error {
	drained := t.drain()
	err := p.EndTransaction(ctx, kgo.TryAbort) // sends nothing: nothing was produced
	if drained != nil {
		return finish(false, drained)
	}
	if err != nil {
		return finish(false, fmt.Errorf("end empty transaction on %s: %w", id, err))
	}
	octx, cancel := context.WithTimeout(ctx, commitDeadline)
	defer cancel()
	if err := commitOffsetsPlain(octx, t.cons, offsets); err != nil {
		if !refusedByRebalance(err) {
			return finish(false, stuck(octx, "commit offsets", err))
		}
		t.rewind()
		t.l.log.Info("the group refused the batch's offsets; it comes back", "err", err)
		if err := finish(false, nil); err != nil {
			return err
		}
	} else {
		t.advance(offsets)
		if err := finish(true, nil); err != nil {
			return err
		}
	}
	if t.wanted.Load() {
		return t.idle()
	}
	return nil
}

// commitOffsetsPlain commits offsets for cons's group, outside any
// transaction.
func commitOffsetsPlain(ctx context.Context, cons *kgo.Client, offsets map[string]map[int32]int64) error {
	to := map[string]map[int32]kgo.EpochOffset{}
	for topic, parts := range offsets {
		to[topic] = map[int32]kgo.EpochOffset{}
		for p, off := range parts {
			to[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: off}
		}
	}
	var failed error
	cons.CommitOffsetsSync(ctx, to, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			failed = fmt.Errorf("commit offsets: %w", err)
			return
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil && failed == nil {
					failed = fmt.Errorf("commit offsets: %s[%d]: %w", rt.Topic, rp.Partition, err)
				}
			}
		}
	})
	return failed
}

// refusedByRebalance reports whether err, from CommitOffsetsInTxn, is one
// that a GroupTransactSession takes for a rebalance or a coordinator moving
// and answers by aborting the batch (not the session): the member's
// generation or id is no longer the group's, or the group coordinator was
// away.
func refusedByRebalance(err error) bool {
	for _, e := range []error{
		kerr.IllegalGeneration, kerr.UnknownMemberID, kerr.StaleMemberEpoch, kerr.RebalanceInProgress,
		kerr.NotCoordinator, kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// TransactionVersion2 reports whether the cluster cl is connected to runs
// transactions under version 2 (KIP-890 part 2): its finalized
// transaction.version feature is 2 or more. That is what franz-go checks
// before it opts a transactional producer in, when MaxVersions allows
// (OffsetCommitVersions).
func TransactionVersion2(ctx context.Context, cl *kgo.Client) (bool, error) {
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return false, fmt.Errorf("api versions: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return false, fmt.Errorf("api versions: %w", err)
	}
	if resp.FinalizedFeaturesEpoch == -1 {
		// No finalized features known (franz-go reads none then).
		return false, nil
	}
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "transaction.version" {
			return f.MaxVersionLevel >= 2, nil
		}
	}
	return false, nil
}

// OffsetCommitVersions returns the request versions of a transactional
// producer whose transactions take offsets through CommitOffsetsInTxn, on a
// cluster that runs transaction version 2 (tv2) or not. Under version 2,
// TxnOffsetCommit v5 adds the offsets to the transaction itself, and the
// producer runs version 2 (its epoch bumped at each transaction's end); v6
// names topics by id, which the request does not carry. Under version 1, v4
// follows AddOffsetsToTxn, and the cap keeps franz-go from opting in later.
func OffsetCommitVersions(tv2 bool) *kversion.Versions {
	versions := kversion.Stable()
	if tv2 {
		versions.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 5)
	} else {
		versions.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 4)
	}
	return versions
}

// CommitOffsetsInTxn adds offsets (topic -> partition -> next offset), the
// consumer offsets of group, to the open transaction of p, a transactional
// producer whose id is txnID, with the member id and generation cons has
// in group, so that the group coordinator refuses them from a member the
// group has moved on from (KIP-447). It is how a producer commits the
// offsets of a consumer that is another client, as when two producers
// overlap their transactions (Config.Overlap). p must have been created
// with OffsetCommitVersions(tv2), tv2 from TransactionVersion2, and have
// produced in the transaction already: under version 1 AddOffsetsToTxn
// goes first; under version 2 the group coordinator adds the offsets to the
// transaction itself.
func CommitOffsetsInTxn(ctx context.Context, p *kgo.Client, txnID string, cons *kgo.Client, group string, offsets map[string]map[int32]int64, tv2 bool) error {
	id, epoch, err := p.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("producer id: %w", err)
	}
	if !tv2 {
		if err := addOffsetsToTxn(ctx, p, txnID, id, epoch, group); err != nil {
			return err
		}
	}
	member, gen := cons.GroupMetadata()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = txnID, group, id, epoch
	req.Generation, req.MemberID = gen, member
	for _, topic := range slices.Sorted(maps.Keys(offsets)) {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		for _, part := range slices.Sorted(maps.Keys(offsets[topic])) {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = part, offsets[topic][part], -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, p)
	if err != nil {
		return fmt.Errorf("commit offsets in transaction: %w", err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return fmt.Errorf("commit offsets in transaction: %s[%d]: %w", rt.Topic, rp.Partition, err)
			}
		}
	}
	return nil
}

// addOffsetsToTxn adds group's offsets partition to the open transaction of
// producer id and epoch (transaction version 1).
func addOffsetsToTxn(ctx context.Context, p *kgo.Client, txnID string, id int64, epoch int16, group string) error {
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, id, epoch, group
	for backoff := time.Millisecond; ; backoff = min(2*backoff, 100*time.Millisecond) {
		resp, err := add.RequestWith(ctx, p)
		if err != nil {
			return fmt.Errorf("add offsets to transaction: %w", err)
		}
		err = kerr.ErrorForCode(resp.ErrorCode)
		if errors.Is(err, kerr.ConcurrentTransactions) {
			// The previous transaction's markers are still being
			// written.
			select {
			case <-ctx.Done():
				return fmt.Errorf("add offsets to transaction: %w", ctx.Err())
			case <-time.After(backoff):
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("add offsets to transaction: %w", err)
		}
		return nil
	}
}
