package eskafka

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fenceDeadline bounds one search for the open transactions of departed
// members and the fencing of what it finds.
const fenceDeadline = 30 * time.Second

// consumerOffsetsTopic holds the offsets a transaction commits; every
// stage's transactions write it beside the stage's own topics.
const consumerOffsetsTopic = "__consumer_offsets"

// fenceDeparted ends the open transactions of members that left the
// stage's group without ending them: an instance killed, or frozen past its
// session timeout, and not started again. Until such a transaction ends,
// read_committed readers of every partition it wrote stop at it (outcomes,
// changelogs, the events) and the group's offsets stay unstable, so the new
// owner of its partitions cannot start; the coordinator would abort it
// only after the transaction timeout and its next check (20 to 30 s).
// Initialising a producer with the departed member's transactional id
// aborts it at once and fences the member, should it wake: its next write
// or commit is refused (PRODUCER_FENCED). A restarted instance does the
// same for its own transactions when it starts; this is for the instance
// that does not come back.
//
// A transaction is fenced only when it is open, its transactional id is
// this stage's ({group}.{member instance id}, suffixed ".overlap" for a
// lane's second producer: Config.Overlap), no current member of the
// group has that instance id, and it writes only the stage's own topics:
// the last keeps a stage from fencing the transactions of another service
// or stage whose group's name happens to extend this one's. Transactions
// are listed before the group is described, so a member seen with an open
// transaction and not in the group had left by the time it was looked for.
func (s *Stage) fenceDeparted(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, fenceDeadline)
	defer cancel()
	cl, err := s.cfg.newClient()
	if err != nil {
		return fmt.Errorf("new admin client: %w", err)
	}
	defer closeBounded(cl.Close, s.log)
	adm := kadm.NewClient(cl)
	group := s.Group()
	prefix := group + "."
	// The pattern narrows the listing on Kafka 4.1 and later (KIP-1152);
	// older brokers ignore it and list everything, filtered here. Kafka
	// matches it against the whole id (Java's Matcher.matches), hence
	// the trailing ".*".
	listed, err := adm.ListTransactionsByTxPattern(ctx, nil, []string{"Ongoing"}, "^"+regexp.QuoteMeta(prefix)+".*")
	if err != nil && len(listed) == 0 {
		return fmt.Errorf("list open transactions: %w", err)
	}
	var open []string
	for id, t := range listed {
		if t.State == "Ongoing" && strings.HasPrefix(id, prefix) {
			open = append(open, id)
		}
	}
	if len(open) == 0 {
		return nil
	}
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	g, ok := groups[group]
	if !ok {
		return fmt.Errorf("describe group %s: not in the answer", group)
	}
	if g.Err != nil {
		return fmt.Errorf("describe group %s: %w", group, g.Err)
	}
	members := map[string]bool{}
	for _, m := range g.Members {
		if m.InstanceID != nil {
			members[*m.InstanceID] = true
		}
	}
	described, err := adm.DescribeTransactions(ctx, open...)
	if err != nil && len(described) == 0 {
		return fmt.Errorf("describe transactions %v: %w", open, err)
	}
	var retired map[string]bool
	if !s.cfg.Overlap {
		// This instance's lanes may have run with Overlap before a
		// crash, and nothing initialises their second ids now.
		retired = map[string]bool{}
		for _, l := range s.lanes {
			retired[l.transactionalID()+overlapSuffix] = true
		}
	}
	for _, id := range departedTransactions(group, members, retired, s.outputTopics(), described) {
		if err := s.fence(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// departedTransactions returns the transactional ids among described that
// belong to members of group no longer in it (see fenceDeparted), or that
// are retired, ids of this instance's that no producer of it uses now (its
// lanes' second ids when its transactions no longer overlap): open, named
// {group}.{instance id} for an instance id no member has, or retired, and
// writing only outputs (and the consumer offsets), at least one of them.
func departedTransactions(group string, members, retired map[string]bool, outputs []string, described kadm.DescribedTransactions) []string {
	var out []string
	for _, t := range described.Sorted() {
		instance, ok := strings.CutPrefix(t.TxnID, group+".")
		// A lane whose transactions overlap has a second producer,
		// its id suffixed (Config.Overlap).
		instance = strings.TrimSuffix(instance, overlapSuffix)
		if t.Err != nil || t.State != "Ongoing" || !ok || instance == "" || (members[instance] && !retired[t.TxnID]) {
			continue
		}
		ours := false
		for topic := range t.Topics {
			ours = ours || slices.Contains(outputs, topic)
		}
		if ours && writesOnly(t.Topics, outputs) {
			out = append(out, t.TxnID)
		}
	}
	return out
}

// writesOnly reports whether every topic of topics is one of outputs or
// the consumer offsets.
func writesOnly(topics kadm.TopicsSet, outputs []string) bool {
	for topic := range topics {
		if topic != consumerOffsetsTopic && !slices.Contains(outputs, topic) {
			return false
		}
	}
	return true
}

// fence initialises a producer with the transactional id id, which aborts
// its open transaction and fences whoever held it.
func (s *Stage) fence(ctx context.Context, id string) error {
	cl, err := s.cfg.newClient(kgo.TransactionalID(id), kgo.TransactionTimeout(transactionTimeout))
	if err != nil {
		return fmt.Errorf("new client to fence %s: %w", id, err)
	}
	defer closeBounded(cl.Close, s.log)
	// The coordinator answers CONCURRENT_TRANSACTIONS until the abort's
	// markers are written; the client retries until then.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return fmt.Errorf("fence the transactions of %s: %w", id, err)
	}
	s.log.Warn("fenced the open transaction of a member that left the group: its partitions need not wait for the transaction timeout", "transactional_id", id)
	s.cfg.Observer.Fenced(s.spec.Name)
	return nil
}

// startFence starts a search for departed members' open transactions
// (fenceDeparted) in the background when partitions were assigned since the
// last one; the lane goes on meanwhile, for its new partitions' offsets and
// changelogs wait for exactly those transactions to end. One search runs
// at a time; one asked for during it runs right after it, by itself: the
// lane may be waiting, in a restore, for the very transaction it would end
// (a search still held by a frozen broker when the partitions came).
func (s *Stage) startFence(ctx context.Context) {
	if !s.fenceDue.Load() || !s.fencing.CompareAndSwap(false, true) {
		return
	}
	s.fences.Go(func() {
		for s.fenceDue.Swap(false) && ctx.Err() == nil {
			if err := s.fenceDeparted(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("could not look for transactions left open by members that left the group; they end at their timeout", "err", err)
			}
		}
		s.fencing.Store(false)
		// Asked for between the last check and the store: not lost.
		s.startFence(ctx)
	})
}

// fenceWhileWaiting asks for another search for departed members'
// transactions while a restore waits for a transaction open on a changelog
// (restore's waiting): the search made when the partitions came may have
// run before their owner left the group, and the transaction would then
// last until its timeout. At most one search a second.
func (s *Stage) fenceWhileWaiting(ctx context.Context) func() {
	var last time.Time
	return func() {
		if time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		s.fenceDue.Store(true)
		s.startFence(ctx)
	}
}
