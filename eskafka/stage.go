package eskafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/store"
)

// Table is a keyspace of a stage's store, backed by a changelog topic. The
// changelog partition of a key is the partition of the input record that
// wrote it; all of a stage's topics have the same partition count.
type Table struct {
	// Prefix separates the table's keys in the store, e.g. "s/".
	Prefix string
	// Topic is the table's changelog topic.
	Topic string
	// Hashed is true when a key's partition is the Kafka partition its
	// key hashes to (so the store can drop one partition's keys); false
	// when keys are stored under their partition number instead.
	Hashed bool
	// Restore, when set, makes the table an index of records the stage
	// writes to Topic anyway (not a changelog of its own): the transform
	// fills it with Tx.PutLocal, and a restore calls Restore for each
	// record of Topic to rebuild the same entries. get reads the table
	// as restored so far (keys as for Tx.Get).
	Restore func(put func(key string, value []byte), get func(key string) ([]byte, bool, error), r *kgo.Record) error
	// Retention, when set, is how long the local store keeps an entry
	// after it was last written: for a table whose changelog Kafka drops
	// by retention (cleanup.policy delete), so that the store forgets
	// what the topic does. Each entry's time is kept beside it in the
	// store (the commit's time, or the changelog record's on a restore);
	// each lane sweeps its partitions of the table about once an hour, a
	// step between batches, and deletes the entries past it from the
	// local store only (the changelog gets no tombstone: retention
	// removes its records). Only for a table whose keys are stored under
	// their partition (Hashed false).
	Retention time.Duration
}

func (t *Table) storeKey(partition int32, key string) string {
	if t.Hashed {
		return t.Prefix + key
	}
	return fmt.Sprintf("%s%04d/%s", t.Prefix, partition, key)
}

// Transform is the logic of a stage: it handles one input record inside
// the stage's transaction. An error is not a rejection but a failure: the
// transaction aborts and the stage restarts its session.
type Transform interface {
	Handle(tx *Tx, r *kgo.Record) error
}

// StageSpec describes a stage.
type StageSpec struct {
	// Name identifies the stage in its consumer group and transactional
	// id: "{service}.{name}".
	Name string
	// Inputs are the topics consumed, co-partitioned.
	Inputs []string
	// Tables are the stage's changelogged keyspaces.
	Tables []*Table
	// Transform handles each input record.
	Transform Transform
	// DeadLetter, when set, is the topic that receives input records the
	// stage gave up on (see Quarantiner), with headers saying why.
	DeadLetter string
	// Outputs are the topics the transform emits to, beside the tables'
	// changelogs and the dead-letter topic: their max.message.bytes
	// bound what the stage produces.
	Outputs []string
}

// Stage is an exactly-once stateful stream processor: it consumes its
// inputs in a consumer group and, per batch, one Kafka transaction holds
// what the transform emitted, the table changes (to their changelogs) and
// the consumer offsets. Table changes reach the local store only after the
// transaction commits; a partition is caught up from the changelogs before
// it is processed or served.
//
// A stage runs Config.Lanes lanes: each is a member of the stage's group
// with a transactional producer of its own, so that as many transactions
// are in flight at once, each on the partitions its member was assigned.
// Lanes share the store, whose keys are partitioned like the inputs; a
// partition is processed by one lane at a time, so a key's commands stay
// in order.
type Stage struct {
	spec StageSpec
	cfg  Config
	log  *slog.Logger
	// writes are the topics a transform may emit to: the outputs, the
	// tables' topics and the dead-letter topic.
	writes map[string]bool

	mu    sync.RWMutex
	lanes []*lane
	// owners is the partition -> advertised URL map of the last
	// assignment any lane received from the group's leader.
	owners   map[int32]string
	restored int64

	// limits are the max.message.bytes of the topics the stage writes,
	// read at the start of each session.
	limits map[string]int
	// poison holds the input records the stage gave up on, to be
	// quarantined when they come back; failures counts failed attempts
	// at records.
	poison   map[recordID]*Poisoned
	failures map[recordID]int
	health   health

	// fenceDue is set when a lane is assigned partitions it did not
	// have: their previous owner may have left a transaction open
	// (fenceDeparted). fencing is set while a search runs; fences
	// tracks the searches, which Run waits for.
	fenceDue atomic.Bool
	fencing  atomic.Bool
	fences   sync.WaitGroup
}

// lane is one member of a stage's group and its transactional session.
// Its fields are guarded by the stage's mu.
type lane struct {
	s     *Stage
	index int
	log   *slog.Logger
	// instanceID is the lane's static group membership; the transactional
	// id is derived from it.
	instanceID string

	parts map[int32]PartitionState
	// fresh partitions were assigned and not processed yet: before their
	// first batch they catch up once more, waiting for the previous
	// owner's last transaction to be resolved.
	fresh  map[int32]bool
	joined bool
	// owners is the ownership map of the lane's last assignment.
	owners map[int32]string
	// inflight maps the store keys of the batches being committed (one,
	// or two when transactions overlap) to a channel closed once their
	// batch reached the store (or was dropped); committing lists those
	// channels. A reader that saw a command's outcome (visible at
	// commit) and reads its key waits for it, so it reads its own write.
	inflight   map[string]chan struct{}
	committing map[chan struct{}]bool
	// isolate holds, per input partition, the end of a batch that failed
	// with more than one suspect: up to there, records are processed one
	// per transaction so the culprit shows.
	isolate map[store.TopicPartition]int64
	// commits counts the lane's committed transactions.
	commits atomic.Int64
	// gen counts sessions.
	gen uint64
	// expiry is the lane's sweep of expired table entries; only the
	// lane's goroutine touches it.
	expiry expiry
	// stopPoll ends the idle poll in progress (nil when none is), and
	// woken is set when there is work to look at before waiting again:
	// see wake.
	stopPoll context.CancelFunc
	woken    bool
	// skipped are the input batches of this session that the client
	// could not decompress within its bound (kgo.ErrDecompressTooLarge):
	// the consumer was moved past them, and the next transaction
	// dead-letters them with the moved offsets. Only the lane's
	// goroutine touches it.
	skipped []*kgo.ErrDecompressTooLarge
}

// ifCurrent runs fn, under the stage's lock, if session gen is the lane's
// current one.
func (l *lane) ifCurrent(gen uint64, fn func()) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.gen == gen {
		fn()
	}
}

// NewStage returns a stage; call Run to start it.
func NewStage(spec StageSpec, cfg Config) *Stage {
	cfg.defaults()
	// The brokers that let a request time out or refused a connection
	// lately are noted by every client of the stage (of the App it was
	// made for, if any): the next sessions bootstrap from the others.
	if cfg.silent == nil {
		cfg.silent = &silentBrokers{}
		cfg.ClientOpts = append(slices.Clone(cfg.ClientOpts), kgo.WithHooks(cfg.silent))
	}
	s := &Stage{
		spec: spec, cfg: cfg, log: cfg.Logger.With("stage", spec.Name),
		poison: map[recordID]*Poisoned{}, failures: map[recordID]int{},
		writes: map[string]bool{spec.DeadLetter: spec.DeadLetter != ""},
	}
	for _, t := range spec.Outputs {
		s.writes[t] = true
	}
	for _, t := range spec.Tables {
		if t != nil { // refused by AddStage and Run (specError)
			s.writes[t.Topic] = true
		}
	}
	if cfg.ClientLogLevel != kgo.LogLevelNone {
		s.cfg.ClientOpts = append(slices.Clone(s.cfg.ClientOpts), kgo.WithLogger(ClientLogger(s.log, cfg.ClientLogLevel)))
	}
	for i := range cfg.Lanes {
		l := &lane{
			s: s, index: i, instanceID: laneInstanceID(cfg.InstanceID, i), log: s.log,
			parts: map[int32]PartitionState{}, fresh: map[int32]bool{}, isolate: map[store.TopicPartition]int64{},
		}
		if cfg.Lanes > 1 {
			l.log = s.log.With("lane", i)
		}
		s.lanes = append(s.lanes, l)
	}
	return s
}

// laneInstanceID is lane i's group instance id: the instance's own for the
// first lane, so that one lane is what a stage always was.
func laneInstanceID(instanceID string, i int) string {
	if i == 0 {
		return instanceID
	}
	return fmt.Sprintf("%s.lane%d", instanceID, i)
}

// Group returns the stage's consumer group.
func (s *Stage) Group() string { return s.cfg.Service + "." + s.spec.Name }

// Linger returns how long the stage waits for more records after the
// first of a batch (Config.Linger).
func (s *Stage) Linger() time.Duration { return s.cfg.Linger }

// TransactionalID returns the stable transactional id of the stage's
// first lane.
func (s *Stage) TransactionalID() string { return s.lanes[0].transactionalID() }

// transactionalID returns the lane's stable transactional id.
func (l *lane) transactionalID() string { return l.s.Group() + "." + l.instanceID }

// maxSessionBackoff bounds the wait between failed sessions: while Kafka
// is away a stage tries again this often, and is back this soon after.
const maxSessionBackoff = 5 * time.Second

// Run processes input until ctx is done, running every lane. A transaction
// in flight when ctx is cancelled is finished.
func (s *Stage) Run(ctx context.Context) error {
	if s.cfg.Store == nil || s.cfg.Partitions <= 0 {
		return fmt.Errorf("stage %s: its Config needs a Store and Partitions (App.StageConfig makes one)", s.spec.Name)
	}
	if err := s.specError(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, l := range s.lanes {
		wg.Go(func() { l.run(ctx) })
	}
	wg.Wait()
	s.fences.Wait()
	return nil
}

// specError names what of the stage's spec it cannot run with: a
// missing name, input or transform, or a table that is nil, has no topic,
// shares another's prefix (their keys would mix) or expires a hashed key.
func (s *Stage) specError() error {
	switch {
	case s.spec.Name == "":
		return errors.New("a stage has no StageSpec.Name")
	case len(s.spec.Inputs) == 0:
		return fmt.Errorf("stage %s has no StageSpec.Inputs", s.spec.Name)
	case s.spec.Transform == nil:
		return fmt.Errorf("stage %s has no StageSpec.Transform", s.spec.Name)
	}
	prefixes := map[string]bool{}
	for i, t := range s.spec.Tables {
		switch {
		case t == nil:
			return fmt.Errorf("stage %s: StageSpec.Tables[%d] is nil", s.spec.Name, i)
		case t.Topic == "":
			return fmt.Errorf("stage %s: table %q has no Topic", s.spec.Name, t.Prefix)
		case prefixes[t.Prefix]:
			return fmt.Errorf("stage %s: two tables have the prefix %q; their keys would mix", s.spec.Name, t.Prefix)
		}
		prefixes[t.Prefix] = true
		if t.Retention > 0 && t.Hashed {
			return fmt.Errorf("stage %s: table %q expires entries but is Hashed; Retention needs keys stored under their partition", s.spec.Name, t.Prefix)
		}
	}
	return nil
}

// run runs the lane's sessions until ctx is done. A failed session is
// replaced after a backoff, which starts again from one second once a
// session made progress; a session stuck on a broker that does not answer
// is replaced at once.
func (l *lane) run(ctx context.Context) {
	s := l.s
	backoff := time.Second
	for {
		commits := l.commits.Load()
		err := l.runSession(ctx)
		if ctx.Err() != nil {
			return
		}
		if l.commits.Load() != commits {
			backoff = time.Second
		}
		s.noteFailure(err)
		wait := backoff
		if errors.Is(err, errSessionStuck) {
			// The session waited on a broker that stopped answering,
			// long enough already: a new one finds where the
			// cluster has moved its coordinators and leaders.
			wait = 0
		} else {
			backoff = min(2*backoff, maxSessionBackoff)
		}
		l.log.Error("transactional session failed; starting a new one", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// outputTopics are the topics the stage writes.
func (s *Stage) outputTopics() []string {
	topics := slices.Clone(s.spec.Outputs)
	for _, t := range s.spec.Tables {
		topics = append(topics, t.Topic)
	}
	if s.spec.DeadLetter != "" {
		topics = append(topics, s.spec.DeadLetter)
	}
	return topics
}

func (l *lane) runSession(ctx context.Context) error {
	s := l.s
	setup, cancelSetup := context.WithTimeout(ctx, setupDeadline)
	defer cancelSetup()
	s.mu.Lock()
	l.gen++
	gen := l.gen
	s.mu.Unlock()
	limits, err := l.sessionLimits(setup, s.cfg)
	if err != nil {
		return stuck(setup, "read the size limits of the output topics", err)
	}
	var t transactor
	if s.cfg.Overlap {
		t, err = l.newOverlapTransactor(setup, gen, limits)
	} else {
		t, err = l.newSessionTransactor(setup, gen, limits)
	}
	if err != nil {
		return err
	}
	defer func() {
		// The session's partitions stop being served before its
		// client closes: closing revokes them, and in between the
		// lane would look joined and owning nothing, and send readers
		// of its own partitions elsewhere.
		s.mu.Lock()
		l.gen++ // the session is over: its late callbacks are ignored
		held := slices.Collect(maps.Keys(l.parts))
		clear(l.parts)
		clear(l.fresh)
		clear(l.isolate)
		l.joined = false
		l.owners = nil
		if !slices.ContainsFunc(s.lanes, func(o *lane) bool { return o.joined }) {
			s.owners = nil
		}
		s.mu.Unlock()
		s.clearLag(held)
		t.close()
		if ctx.Err() != nil {
			// Shutting down for good: a static member does not leave
			// the group on close, so leave explicitly and let the
			// survivors take the partitions now.
			l.leaveGroup()
		}
	}()
	expires := s.expires()
	l.skipped = nil
	for ctx.Err() == nil {
		s.startFence(ctx)
		if err := l.restorePending(ctx); err != nil {
			return err
		}
		recs, err := l.poll(ctx, t)
		if err != nil {
			return err
		}
		if now := time.Now(); expires && l.expiry.stepDue(now) {
			// The sweep reads entries' times and deletes the old
			// ones: a commit still on its way to the store (Overlap)
			// reaches it first, or the sweep could delete an entry
			// that commit has just written again.
			if err := t.settle(); err != nil {
				return err
			}
			if err := l.expireStep(now); err != nil {
				return err
			}
		}
		if len(recs) == 0 && len(l.skipped) == 0 {
			if err := t.idle(); err != nil {
				return err
			}
			continue
		}
		// A partition assigned during the poll is caught up before
		// any of its records is processed.
		if err := l.restorePending(ctx); err != nil {
			return err
		}
		if err := l.catchUpFresh(ctx, recs); err != nil {
			return err
		}
		if err := l.processBatch(ctx, t, recs); err != nil {
			return err
		}
	}
	return nil
}

// limitsRefresh bounds how long a session waits for the output topics'
// size limits when an earlier session read them.
const limitsRefresh = time.Second

// sessionLimits reads the max.message.bytes of the stage's output topics
// for a new session. Once a session has read them, a later one that cannot
// (the broker it asks was killed and not fenced yet) keeps the last ones:
// a limit lowered meanwhile only makes a batch too large, which the
// session isolates and quarantines like any refused record, whereas
// failing here would stop the stage until that broker is back.
func (l *lane) sessionLimits(ctx context.Context, cfg Config) (map[string]int, error) {
	s := l.s
	s.mu.RLock()
	last := s.limits
	s.mu.RUnlock()
	if last != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limitsRefresh)
		defer cancel()
	}
	limits, err := readLimits(ctx, cfg, s.outputTopics())
	if err != nil {
		if last == nil {
			return nil, err
		}
		l.log.Warn("cannot read the size limits of the output topics; keeping the last ones read", "err", err)
		return last, nil
	}
	s.mu.Lock()
	s.limits = limits
	s.mu.Unlock()
	return limits, nil
}

// How long an idle lane's poll waits for a first record before the lane
// looks again at what else it has to do: idlePoll when nothing else is
// pending (a partition assigned meanwhile ends the wait: wake), busyPoll
// while a sweep of expired entries is under way, a step per look. Each
// look costs a little CPU per lane: at 200 ms, with every stage of an
// idle service polling, it was about a quarter of the service's idle CPU.
const (
	idlePoll = time.Second
	busyPoll = 200 * time.Millisecond
)

// poll returns the next batch: what has arrived, up to MaxBatch, waiting
// up to Linger after the first record for more.
func (l *lane) poll(ctx context.Context, t transactor) ([]*kgo.Record, error) {
	s := l.s
	var recs []*kgo.Record
	var deadline time.Time
	maxBatch := s.cfg.MaxBatch
	s.mu.RLock()
	if len(l.isolate) > 0 {
		// Looking for the record whose output the broker refused:
		// one record per transaction, so that it shows.
		maxBatch = 1
	}
	s.mu.RUnlock()
	for {
		wait := idlePoll
		if l.expiry.busy() {
			wait = busyPoll
		}
		if len(recs) > 0 {
			wait = time.Until(deadline)
			if wait <= 0 || len(recs) >= maxBatch {
				return recs, nil
			}
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		if len(recs) == 0 {
			s.mu.Lock()
			if l.woken {
				// A partition was assigned since the last look:
				// look now (restorePending), poll after.
				l.woken = false
				s.mu.Unlock()
				cancel()
				return nil, nil
			}
			l.stopPoll = cancel
			s.mu.Unlock()
		}
		fetches := t.poll(pctx, maxBatch-len(recs))
		cancel()
		if len(recs) == 0 {
			s.mu.Lock()
			// A wake during this poll ended it: the lane looks now.
			l.stopPoll, l.woken = nil, false
			s.mu.Unlock()
		}
		if fetches.IsClientClosed() {
			return nil, errors.New("client closed")
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			if tl, ok := errors.AsType[*kgo.ErrDecompressTooLarge](fe.Err); ok {
				l.skip(t, tl)
				continue
			}
			l.log.Warn("fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if n := len(p.Records); n > 0 {
				lag := p.HighWatermark - p.Records[n-1].Offset - 1
				s.cfg.Observer.Lag(s.spec.Name, p.Topic, p.Partition, lag)
				s.noteLag(p.Topic, p.Partition, lag)
			}
		})
		got := fetches.Records()
		if len(recs) == 0 {
			if len(got) == 0 || s.cfg.Linger <= 0 || maxBatch == 1 {
				return got, nil
			}
			deadline = time.Now().Add(s.cfg.Linger)
		}
		recs = append(recs, got...)
		if ctx.Err() != nil {
			return recs, nil
		}
	}
}

// skip moves the lane's consumer past an input batch the client refused to
// decompress (kgo.ErrDecompressTooLarge: it would decompress past
// MaxDecompressBatchBytes, as a few KiB of zstd can): the client stops
// fetching the partition until then, and every later record of the
// partition would wait for ever. The next transaction commits the moved
// offset and dead-letters the batch (skippedBatches); should it abort, the
// session rewinds, the batch comes back and is skipped again.
func (l *lane) skip(t transactor, tl *kgo.ErrDecompressTooLarge) {
	l.log.Error("an input batch decompresses past the client's bound; skipping it", "topic", tl.Topic, "partition", tl.Partition,
		"offset", tl.Offset, "next_offset", tl.NextOffset, "dead_letter_topic", l.s.spec.DeadLetter)
	t.skip(tl)
	l.skipped = append(l.skipped, tl)
}

// skippedBatches writes to the dead-letter topic, in tx, a record for each
// input batch the lane skipped (skip): the batch itself cannot be read, so
// the record holds only where it was and why.
func (l *lane) skippedBatches(tx *Tx) {
	s := l.s
	for _, tl := range l.skipped {
		s.cfg.Observer.Poisoned(s.spec.Name, PoisonTooLarge)
		if s.spec.DeadLetter == "" {
			continue
		}
		tx.Emit(&kgo.Record{Topic: s.spec.DeadLetter, Partition: tl.Partition, Headers: []kgo.RecordHeader{
			{Key: HeaderDeadLetterReason, Value: fmt.Appendf(nil, "the batch at offsets %d to %d decompresses past the client's bound (MaxDecompressBatchBytes): skipped unread", tl.Offset, tl.NextOffset-1)},
			{Key: HeaderDeadLetterKind, Value: []byte(PoisonTooLarge)},
			{Key: HeaderDeadLetterTopic, Value: []byte(tl.Topic)},
			{Key: HeaderDeadLetterPartition, Value: formatInt(int64(tl.Partition))},
			{Key: HeaderDeadLetterOffset, Value: formatInt(tl.Offset)},
			{Key: HeaderDeadLetterStage, Value: []byte(s.spec.Name)},
		}})
	}
}

// setOwners takes the ownership map and this member's whole assignment
// from each sync. A partition no longer assigned stops being served here
// at once: OnPartitionsRevoked alone is not enough, for franz-go's
// GroupTransactSession does not call it when a revocation came before and
// no transaction has ended since (an idle stage losing partitions twice).
func (l *lane) setOwners(owners map[int32]string, mine map[string][]int32) {
	l.s.owners = owners
	l.owners = owners
	l.joined = true
	kept := map[int32]bool{}
	for _, ps := range mine {
		for _, p := range ps {
			kept[p] = true
		}
	}
	var gone []int32
	for p := range l.parts {
		if !kept[p] {
			delete(l.parts, p)
			delete(l.fresh, p)
			gone = append(gone, p)
		}
	}
	if len(gone) > 0 {
		l.log.Info("partitions no longer assigned", "partitions", gone)
	}
	// The new ones are restoring from now, not from OnPartitionsAssigned
	// a moment later: in between, Ready would report an instance that
	// has joined and owns nothing yet as ready.
	for p := range kept {
		l.gain(p)
	}
}

func (l *lane) leaveGroup() {
	s := l.s
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...)}, s.cfg.ClientOpts...)...)
	if err != nil {
		return
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).LeaveGroup(ctx, kadm.LeaveGroup(s.Group()).InstanceIDs(l.instanceID).Reason("instance shutting down")); err != nil {
		l.log.Warn("leave group", "err", err)
	}
}

// Owner returns the advertised URL of the instance that owns the key's
// partition, as of the last assignment; "" when unknown (for example while
// the partition moves).
func (s *Stage) Owner(key string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.owners[PartitionFor(key, s.cfg.Partitions)]
}

// Owners returns the partition -> advertised URL map of the last assignment.
func (s *Stage) Owners() map[int32]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.owners)
}

// gain starts restoring partition p if the lane did not own it: it is
// caught up before it is processed or served, and its previous owner may
// have left a transaction open (fenceDeparted). The stage's lock is held.
func (l *lane) gain(p int32) {
	if l.parts[p] == NotOwned {
		l.parts[p] = Restoring
		l.fresh[p] = true
		l.s.fenceDue.Store(true)
		l.wake()
	}
}

// wake ends the lane's idle poll, if one is waiting, so that a partition
// just assigned is caught up now rather than after the idle wait; the next
// poll does not wait if none was. The stage's lock is held.
func (l *lane) wake() {
	l.woken = true
	if l.stopPoll != nil {
		l.stopPoll()
	}
}

func (l *lane) onAssigned(assigned map[string][]int32) {
	l.joined = true
	// Inputs are co-partitioned: partition p of every input is one unit.
	for _, ps := range assigned {
		for _, p := range ps {
			l.gain(p)
		}
	}
	l.log.Info("partitions assigned", "partitions", slices.Sorted(maps.Keys(l.parts)))
}

func (l *lane) onRevoked(revoked map[string][]int32) {
	var gone []int32
	for _, ps := range revoked {
		for _, p := range ps {
			if _, ok := l.parts[p]; ok {
				delete(l.parts, p)
				delete(l.fresh, p)
				gone = append(gone, p)
			}
		}
	}
	l.log.Info("partitions revoked", "partitions", gone)
}

// Tx is the work of one transaction: table changes staged until it
// commits, and the records it produces.
type Tx struct {
	stage  *Stage
	in     *kgo.Record
	staged map[string][]byte // store key -> value; nil: deleted
	// overlay holds the changes of the batch still committing, when
	// transactions overlap: this one was decided after it.
	overlay map[string][]byte
	batch   store.Batch
	send    func(*kgo.Record)

	mu      sync.Mutex // guards the fields below, written by promises
	offsets map[store.TopicPartition]int64
	failed  error
	// sources maps each produced record to the input record it was
	// produced for; culprits are the inputs whose output the broker
	// refused for a fault of the record itself.
	sources  map[*kgo.Record]*kgo.Record
	culprits map[recordID]*kgo.Record
	fault    string
	// misused is the first mistake of the stage's code the transaction
	// met (Tx.misuse).
	misused error
	// misplaced is set when the record being handled touched a hashed
	// table's key of another partition (Tx.placed).
	misplaced error
	// unreadable is the first error of the local store a Get met: the
	// instance's fault, not the record's.
	unreadable error
}

// placed checks that key of t may be kept in the input record's partition:
// a hashed table's key lives in the partition it hashes to, which is where
// a restore and a partition's revocation look for it. Otherwise the record
// is at fault (a foreign producer chose its partition), and is quarantined.
func (tx *Tx) placed(t *Table, key string) error {
	if !t.Hashed {
		return nil
	}
	want := PartitionFor(key, tx.stage.cfg.Partitions)
	if want == tx.in.Partition {
		return nil
	}
	err := fmt.Errorf("record %s/%d@%d uses key %q of table %s, which belongs on partition %d (Kafka's default murmur2 partitioner), not %d",
		tx.in.Topic, tx.in.Partition, tx.in.Offset, truncate(key, 64), t.Topic, want, tx.in.Partition)
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.misplaced == nil {
		tx.misplaced = err
	}
	return err
}

// misuse fails the transaction for a mistake in the stage's code or spec:
// the batch is aborted and retried, and the stage reports the error (its
// readiness names it) until the code is fixed; no input is dead-lettered
// for it.
func (tx *Tx) misuse(format string, args ...any) error {
	err := fmt.Errorf("stage %s: "+format, append([]any{tx.stage.spec.Name}, args...)...)
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.misused == nil {
		tx.misused = err
	}
	return err
}

// undeclared returns a misuse error unless t is one of the stage's
// tables: an undeclared table is never restored, so what a transform kept
// in it would be gone after a restart.
func (tx *Tx) undeclared(t *Table) error {
	if slices.Contains(tx.stage.spec.Tables, t) {
		return nil
	}
	return tx.misuse("a table (prefix %q, topic %s) is not in its StageSpec.Tables", t.Prefix, t.Topic)
}

// Get returns the value of key in table as this transaction sees it.
func (tx *Tx) Get(t *Table, key string) ([]byte, bool, error) {
	if err := tx.undeclared(t); err != nil {
		return nil, false, err
	}
	if err := tx.placed(t, key); err != nil {
		return nil, false, err
	}
	sk := t.storeKey(tx.in.Partition, key)
	if v, ok := tx.staged[sk]; ok {
		return v, v != nil, nil
	}
	if v, ok := tx.overlay[sk]; ok {
		return v, v != nil, nil
	}
	v, ok, err := tx.stage.cfg.Store.Get(sk)
	if err != nil {
		err = fmt.Errorf("read local store: %w", err)
		tx.mu.Lock()
		if tx.unreadable == nil {
			tx.unreadable = err
		}
		tx.mu.Unlock()
	}
	return v, ok, err
}

// Put sets key in table to value (nil deletes it), writing the change to
// the table's changelog in the input record's partition.
func (tx *Tx) Put(t *Table, key string, value []byte) {
	if tx.undeclared(t) != nil || tx.placed(t, key) != nil {
		return
	}
	tx.PutLocal(t, key, value)
	tx.produce(&kgo.Record{Topic: t.Topic, Partition: tx.in.Partition, Key: []byte(key), Value: value})
}

// PutLocal sets key in table to value in the local store only, when the
// transaction commits: for an index table (Table.Restore) whose entries are
// derived from records the transaction writes anyway.
func (tx *Tx) PutLocal(t *Table, key string, value []byte) {
	if tx.undeclared(t) != nil || tx.placed(t, key) != nil {
		return
	}
	sk := t.storeKey(tx.in.Partition, key)
	tx.staged[sk] = value
	if value == nil {
		tx.batch.Delete(sk)
	} else {
		tx.batch.Put(sk, value)
	}
	t.stamp(&tx.batch, sk, value != nil, nil)
}

// Retryable reports whether err (typically from decoding an input) may
// pass on retry, per Config.Retryable; a transform returns such an error
// so that the batch is retried, rather than skipping the record.
func (tx *Tx) Retryable(err error) bool {
	return tx.stage.cfg.Retryable != nil && tx.stage.cfg.Retryable(err)
}

// Emit produces r in the transaction: to r.Partition, or, when it is -1,
// to the partition its key hashes to. r.Topic must be one of the stage's
// Outputs (or its tables' or dead-letter topic), for no other topic is
// planned or checked: otherwise the transaction fails, and the stage
// reports the mistake until it is fixed.
func (tx *Tx) Emit(r *kgo.Record) {
	if !tx.stage.writes[r.Topic] {
		tx.misuse("emits to topic %s, which is not in its StageSpec.Outputs", r.Topic)
		return
	}
	if r.Partition < 0 {
		r.Partition = PartitionFor(string(r.Key), tx.stage.cfg.Partitions)
	}
	tx.produce(r)
}

// Fits returns nil if r fits its topic's max.message.bytes, else an error
// that says by how much it does not (errors.Is kerr.MessageTooLarge). A
// transform checks what it is about to write, to refuse the input cleanly
// instead of failing the transaction.
func (tx *Tx) Fits(r *kgo.Record) error {
	tx.stage.mu.RLock()
	limit, ok := tx.stage.limits[r.Topic]
	tx.stage.mu.RUnlock()
	if !ok {
		limit = defaultMaxBatchBytes
	}
	if n := recordSize(r); n > limit {
		return &errTooLarge{topic: r.Topic, size: n, limit: limit}
	}
	return nil
}

// produce sends r for the input record being handled; a record that does
// not fit its topic fails the transaction at once, naming its input.
func (tx *Tx) produce(r *kgo.Record) {
	tx.mu.Lock()
	tx.sources[r] = tx.in
	tx.mu.Unlock()
	if err := tx.Fits(r); err != nil {
		tx.promise(r, err)
		return
	}
	tx.send(r)
}

func (tx *Tx) promise(r *kgo.Record, err error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err != nil {
		if tx.failed == nil {
			tx.failed = fmt.Errorf("produce to %s: %w", r.Topic, err)
		}
		if kind, ok := recordFault(err); ok {
			if in := tx.sources[r]; in != nil {
				tx.culprits[idOf(in)] = in
				tx.fault = kind
			}
		}
		return
	}
	tp := store.TopicPartition{Topic: r.Topic, Partition: r.Partition}
	if r.Offset+1 > tx.offsets[tp] {
		tx.offsets[tp] = r.Offset + 1
	}
}

// processBatch handles recs in one transaction and commits it. A record
// that cannot be handled does not stop the stage: it is quarantined (see
// Quarantiner) once it is known, and the batch is retried without it.
func (l *lane) processBatch(ctx context.Context, t transactor, recs []*kgo.Record) error {
	s := l.s
	start := time.Now()
	s.beginBusy(l.index, start)
	defer s.endBusy(l.index)
	// The transaction is finished even when ctx is cancelled meanwhile:
	// shutting down must not leave it open until the broker times it out.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := t.begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	tx := &Tx{
		stage: s, staged: map[string][]byte{}, overlay: t.overlay(), offsets: map[store.TopicPartition]int64{},
		sources: map[*kgo.Record]*kgo.Record{}, culprits: map[recordID]*kgo.Record{},
	}
	tx.send = func(r *kgo.Record) { t.produce(tctx, r, tx.promise) }
	abort := func(reason error) error {
		l.log.Warn("aborting transaction", "records", len(recs), "reason", reason)
		s.cfg.Observer.Transaction(s.spec.Name, len(recs), false, time.Since(start))
		s.noteFailure(reason)
		actx, cancelAbort := context.WithTimeout(tctx, commitDeadline)
		defer cancelAbort()
		if err := t.abort(actx); err != nil {
			return stuck(actx, fmt.Sprintf("abort transaction after %v", reason), err)
		}
		return nil
	}
	// The batches skipped since the last transaction: written now, and
	// forgotten whatever becomes of this one (an abort rewinds the
	// session, and brings them back to be skipped again).
	l.skippedBatches(tx)
	skipped := l.skipped
	l.skipped = nil
	var quarantined []recordID
	for _, r := range recs {
		tx.in = r
		if p := s.poisoned(r); p != nil {
			s.quarantine(tx, r, p)
			quarantined = append(quarantined, idOf(r))
			continue
		}
		tx.mu.Lock()
		tx.misplaced = nil
		tx.mu.Unlock()
		err := s.handleSafely(tx, r)
		tx.mu.Lock()
		misused, misplaced, unreadable := tx.misused, tx.misplaced, tx.unreadable
		tx.mu.Unlock()
		if unreadable != nil && misused == nil {
			// The store cannot be read (damaged, say): not the
			// record's fault, whatever the handler made of the
			// error. Retried as it is; the stage reports it.
			if aerr := abort(unreadable); aerr != nil {
				return aerr
			}
			return fmt.Errorf("handle %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, unreadable)
		}
		if misplaced != nil && misused == nil {
			// The record's fault: whatever it staged or produced is
			// part of the transaction, so abort, and quarantine it
			// when the session brings it back.
			s.markPoisoned(r, &Poisoned{Kind: PoisonMisplaced, Err: misplaced})
			return abort(misplaced)
		}
		if misused != nil {
			// Not the record's fault: retried as it is, and the
			// stage says what is wrong (readiness) until fixed.
			if aerr := abort(misused); aerr != nil {
				return aerr
			}
			return misused
		}
		if err == nil {
			continue
		}
		var p *Poisoned
		switch {
		case errors.As(err, &p):
			// The records this one produced before it panicked
			// are part of the transaction: abort, and quarantine
			// it when the session brings it back.
			s.markPoisoned(r, p)
			return abort(err)
		case !tx.Retryable(err) && s.countFailure(r):
			s.markPoisoned(r, &Poisoned{Kind: PoisonFailing, Err: err})
			return abort(err)
		}
		if aerr := abort(err); aerr != nil {
			return aerr
		}
		return fmt.Errorf("handle %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	// From here the batch waits on Kafka only: past commitDeadline the
	// session is presumed stuck on a broker that stopped answering.
	cctx, cancelCommit := context.WithTimeout(tctx, commitDeadline)
	defer cancelCommit()
	if err := t.flush(cctx); err != nil {
		return stuck(cctx, "flush transaction", err)
	}
	tx.mu.Lock()
	failed, culprits, fault := tx.failed, tx.culprits, tx.fault
	tx.mu.Unlock()
	if failed != nil {
		l.isolateCulprits(recs, culprits, fault, failed)
		return abort(failed)
	}
	if s.cfg.BeforeCommit != nil {
		if err := s.cfg.BeforeCommit(tctx); err != nil {
			return abort(err)
		}
	}
	done := l.beginInflight(tx.staged)
	return t.commit(tctx, commitBatch{recs: recs, skipped: skipped, staged: tx.staged}, func(committed bool, err error) error {
		defer l.endInflight(done, tx.staged)
		if err != nil {
			// The commit may have gone through (a broker killed
			// while it answered): the store may lack what readers
			// can already see acknowledged, so the partitions are
			// not served until the next session restores them.
			l.unserve()
			return err
		}
		if !committed {
			s.cfg.Observer.Transaction(s.spec.Name, len(recs), false, time.Since(start))
			// A rebalance took partitions away mid-batch: the
			// session has rewound to the committed offsets, so the
			// records come back to whoever owns them now. Nothing
			// was staged in the store.
			l.log.Info("transaction aborted by a rebalance", "records", len(recs))
			return nil
		}
		l.committed(recs, quarantined)
		for tp, next := range tx.offsets {
			if s.table(tp.Topic) != nil {
				tx.batch.SetOffset(tp.Topic, tp.Partition, next)
			}
		}
		if err := s.cfg.Store.Apply(&tx.batch); err != nil {
			// The store is only a cache: losing this write means
			// the next restore reads it back from the changelog;
			// until then the partitions are not served.
			l.unserve()
			return fmt.Errorf("apply committed batch to store: %w", err)
		}
		s.cfg.Observer.Transaction(s.spec.Name, len(recs), true, time.Since(start))
		return nil
	})
}

// isolateCulprits decides, after the broker refused some output of a
// batch, how the retry finds the input at fault: a single suspect is
// poisoned at once; several, or none known, make the stage retry the
// batch's records one per transaction.
func (l *lane) isolateCulprits(recs []*kgo.Record, culprits map[recordID]*kgo.Record, fault string, failed error) {
	s := l.s
	if fault == "" {
		return // not the records' fault: retry as it is
	}
	if len(culprits) == 1 || len(recs) == 1 {
		for _, r := range culprits {
			s.markPoisoned(r, &Poisoned{Kind: fault, Err: failed})
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		tp := store.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		l.isolate[tp] = max(l.isolate[tp], r.Offset+1)
	}
	l.log.Warn("the broker refused the output of several records of a batch; retrying them one per transaction", "records", len(recs), "suspects", len(culprits), "err", failed)
}

// committed forgets what the stage knew of records now committed: their
// failures, their poison entries, and the isolation ranges they closed.
func (l *lane) committed(recs []*kgo.Record, quarantined []recordID) {
	s := l.s
	l.commits.Add(1)
	s.noteCommit()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range quarantined {
		delete(s.poison, id)
	}
	if len(s.failures) > 0 {
		for _, r := range recs {
			delete(s.failures, idOf(r))
		}
	}
	for _, r := range recs {
		tp := store.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if end, ok := l.isolate[tp]; ok && r.Offset+1 >= end {
			delete(l.isolate, tp)
		}
	}
}

func (s *Stage) table(topic string) *Table {
	for _, t := range s.spec.Tables {
		if t.Topic == topic {
			return t
		}
	}
	return nil
}

// restorePending catches up every assigned partition that is not ready yet.
// restore waits for a transaction open on their changelogs to end first: a
// partition served before would answer without a write that may already be
// acknowledged (its commit marker still on its way, say).
func (l *lane) restorePending(ctx context.Context) error {
	s := l.s
	s.mu.RLock()
	var pending []int32
	for part, st := range l.parts {
		if st == Restoring {
			pending = append(pending, part)
		}
	}
	s.mu.RUnlock()
	if err := s.catchUp(ctx, pending); err != nil {
		return err
	}
	l.markReady(pending)
	return nil
}

// catchUp restores the tables' partitions parts from their changelogs.
func (s *Stage) catchUp(ctx context.Context, parts []int32) error {
	if len(parts) == 0 || len(s.spec.Tables) == 0 {
		return nil
	}
	topics := make([]string, len(s.spec.Tables))
	for i, t := range s.spec.Tables {
		topics[i] = t.Topic
	}
	n, err := restore(ctx, s.cfg, topics, parts, s.applyRestored(map[string][]byte{}), s.dropPartition, s.fenceWhileWaiting(ctx))
	if err != nil {
		return fmt.Errorf("restore partitions %v of %s: %w", parts, s.spec.Name, err)
	}
	s.mu.Lock()
	s.restored += n
	s.mu.Unlock()
	s.cfg.Observer.Restored(s.spec.Name, n)
	return nil
}

// catchUpFresh catches up the partitions of recs that were not processed
// since they were assigned. Their records arriving means the group's offsets
// are stable (KIP-447): the previous owner's last transaction is resolved,
// though its markers may still be on their way to the changelogs, which
// restore waits for.
func (l *lane) catchUpFresh(ctx context.Context, recs []*kgo.Record) error {
	s := l.s
	s.mu.RLock()
	var fresh []int32
	for _, r := range recs {
		if l.fresh[r.Partition] && !slices.Contains(fresh, r.Partition) {
			fresh = append(fresh, r.Partition)
		}
	}
	s.mu.RUnlock()
	if err := s.catchUp(ctx, fresh); err != nil {
		return err
	}
	s.mu.Lock()
	for _, p := range fresh {
		delete(l.fresh, p)
	}
	s.mu.Unlock()
	return nil
}

func (l *lane) markReady(parts []int32) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	for _, p := range parts {
		if l.parts[p] == Restoring {
			l.parts[p] = Ready
		}
	}
}

// applyRestored stages one changelog record into b. An index table
// (Table.Restore) derives its entries from the record instead; its reads
// see what this restore staged (overlay) before the store.
func (s *Stage) applyRestored(overlay map[string][]byte) func(b *store.Batch, r *kgo.Record) {
	var current *store.Batch
	return func(b *store.Batch, r *kgo.Record) {
		if b != current {
			// restore applied the previous batch: the store has it.
			clear(overlay)
			current = b
		}
		t := s.table(r.Topic)
		if t == nil {
			return
		}
		if t.Restore != nil {
			put := func(key string, value []byte) {
				sk := t.storeKey(r.Partition, key)
				overlay[sk] = value
				if value == nil {
					b.Delete(sk)
				} else {
					b.Put(sk, value)
				}
				t.stamp(b, sk, value != nil, r)
			}
			get := func(key string) ([]byte, bool, error) {
				sk := t.storeKey(r.Partition, key)
				if v, ok := overlay[sk]; ok {
					return v, v != nil, nil
				}
				return s.cfg.Store.Get(sk)
			}
			if err := t.Restore(put, get, r); err != nil {
				s.log.Error("cannot index a record; leaving it out", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			}
			return
		}
		if t.Hashed {
			if want := PartitionFor(string(r.Key), s.cfg.Partitions); want != r.Partition {
				// Not the stage's (it refuses to write a key
				// elsewhere, Tx.placed): kept, the key would have
				// entries on two partitions, and a restore would
				// keep whichever it read last.
				s.log.Error("changelog record on another partition than its key's; leaving it out", "topic", r.Topic, "partition", r.Partition,
					"offset", r.Offset, "key", truncate(string(r.Key), 64), "want_partition", want)
				return
			}
		}
		sk := t.storeKey(r.Partition, string(r.Key))
		if r.Value == nil {
			b.Delete(sk)
		} else {
			b.Put(sk, r.Value)
		}
		t.stamp(b, sk, r.Value != nil, r)
	}
}

// dropPartition deletes the store's data of one changelog partition, and
// its recorded offset.
func (s *Stage) dropPartition(topic string, partition int32) error {
	t := s.table(topic)
	if t == nil {
		return nil
	}
	b := store.Batch{Offsets: map[store.TopicPartition]int64{{Topic: topic, Partition: partition}: 0}}
	prefix := t.Prefix
	if !t.Hashed {
		prefix = fmt.Sprintf("%s%04d/", t.Prefix, partition)
	}
	err := s.cfg.Store.Scan(prefix, "", func(k string, _ []byte) bool {
		if !t.Hashed || PartitionFor(strings.TrimPrefix(k, t.Prefix), s.cfg.Partitions) == partition {
			b.Delete(k)
		}
		return true
	})
	if err == nil && t.Retention > 0 {
		err = s.cfg.Store.Scan(expiryPrefix+prefix, "", func(k string, _ []byte) bool {
			b.Delete(k)
			return true
		})
	}
	if err != nil {
		return fmt.Errorf("drop partition %s/%d: %w", topic, partition, err)
	}
	return s.cfg.Store.Apply(&b)
}

// unserve stops serving the lane's partitions until the next session has
// caught them up: a commit whose outcome is unknown, or that did not reach
// the store, leaves the store behind what readers may know is committed.
func (l *lane) unserve() {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	for p := range l.parts {
		l.parts[p] = Restoring
	}
}

// beginInflight marks the keys of staged as being committed, until
// endInflight is called with the channel it returns.
func (l *lane) beginInflight(staged map[string][]byte) chan struct{} {
	done := make(chan struct{})
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.inflight == nil {
		l.inflight, l.committing = map[string]chan struct{}{}, map[chan struct{}]bool{}
	}
	for k := range staged {
		l.inflight[k] = done
	}
	l.committing[done] = true
	return done
}

func (l *lane) endInflight(done chan struct{}, staged map[string][]byte) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	for k := range staged {
		if l.inflight[k] == done {
			delete(l.inflight, k)
		}
	}
	delete(l.committing, done)
	close(done)
}

// awaitInflight waits while storeKey is part of a batch being committed,
// and reports whether it waited.
func (s *Stage) awaitInflight(storeKey string) bool {
	s.mu.RLock()
	var done chan struct{}
	for _, l := range s.lanes {
		if c, busy := l.inflight[storeKey]; busy {
			done = c
		}
	}
	s.mu.RUnlock()
	if done == nil {
		return false
	}
	<-done
	return true
}

// partitionState returns what the stage does with partition part; the
// caller holds s.mu.
func (s *Stage) partitionState(part int32) PartitionState {
	for _, l := range s.lanes {
		if st, ok := l.parts[part]; ok {
			return st
		}
	}
	return NotOwned
}

// allJoined reports whether every lane has joined the group; the caller
// holds s.mu. Until then, a partition owned by no lane may still come to
// one of them.
func (s *Stage) allJoined() bool {
	return !slices.ContainsFunc(s.lanes, func(l *lane) bool { return !l.joined })
}

// settled reports whether every lane's last assignment gave every
// partition an owner; the caller holds s.mu. With several lanes, the group
// moves partitions between them in two steps (cooperative rebalancing:
// revoked in one generation, assigned in the next), and an instance whose
// lanes joined one after the other is not ready until the second step is
// done. With one lane, an assignment is always settled.
func (s *Stage) settled() bool {
	if len(s.lanes) == 1 || s.cfg.Partitions <= 0 {
		return true
	}
	return !slices.ContainsFunc(s.lanes, func(l *lane) bool { return len(l.owners) < int(s.cfg.Partitions) })
}

// servable returns nil if the stage serves partition part now.
func (s *Stage) servable(part int32) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch s.partitionState(part) {
	case Ready:
		return nil
	case Restoring:
		return ErrRestoring
	}
	if !s.allJoined() {
		return ErrRestoring
	}
	return ErrNotOwner
}

// Lookup returns the value of key in table, from the store, if this
// instance serves the key's partition.
func (s *Stage) Lookup(t *Table, key string) ([]byte, error) {
	part := PartitionFor(key, s.cfg.Partitions)
	if err := s.servable(part); err != nil {
		return nil, err
	}
	sk := t.storeKey(part, key)
	if s.awaitInflight(sk) {
		// The batch may have failed to commit, or to reach the
		// store, meanwhile (unserve).
		if err := s.servable(part); err != nil {
			return nil, err
		}
	}
	b, ok, err := s.cfg.Store.Get(sk)
	if err != nil {
		return nil, fmt.Errorf("load %q: %w", key, err)
	}
	if !ok {
		return nil, ErrNotFound
	}
	return b, nil
}

// Scan calls fn in key order for the keys of a hashed table after after,
// from the partitions this instance serves, until fn returns false.
// partial reports that some owned partitions are still restoring.
func (s *Stage) Scan(t *Table, after string, fn func(key string, value []byte) bool) (partial bool, err error) {
	s.mu.RLock()
	var inflight []chan struct{}
	for _, l := range s.lanes {
		for done := range l.committing {
			inflight = append(inflight, done)
		}
	}
	s.mu.RUnlock()
	for _, done := range inflight {
		<-done // read your own writes: let a committing batch land
	}
	// Which partitions are served is read after the wait: a batch that
	// failed to commit, or to reach the store, unserved its partitions.
	s.mu.RLock()
	ready := map[int32]bool{}
	for _, l := range s.lanes {
		for part, st := range l.parts {
			ready[part] = st == Ready
			partial = partial || st == Restoring
		}
	}
	partial = partial || !s.allJoined()
	s.mu.RUnlock()
	err = s.cfg.Store.Scan(t.Prefix, t.Prefix+after, func(k string, v []byte) bool {
		key := strings.TrimPrefix(k, t.Prefix)
		if !ready[PartitionFor(key, s.cfg.Partitions)] {
			return true
		}
		return fn(key, v)
	})
	return partial, err
}

// Partitions returns the state of each partition this instance owns.
func (s *Stage) Partitions() map[int32]PartitionState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	parts := map[int32]PartitionState{}
	for _, l := range s.lanes {
		maps.Copy(parts, l.parts)
	}
	return parts
}

// Ready reports whether the stage has joined its group with every lane,
// its assignment is settled (see settled), and it restored every partition
// it owns.
func (s *Stage) Ready() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.allJoined() || !s.settled() {
		return false
	}
	return !slices.ContainsFunc(s.lanes, func(l *lane) bool {
		return slices.Contains(slices.Collect(maps.Values(l.parts)), Restoring)
	})
}

// Restored returns the number of changelog records restored so far.
func (s *Stage) Restored() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.restored
}

// Logger returns the stage's logger.
func (s *Stage) Logger() *slog.Logger { return s.log }
