package chaostest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/projection"
)

// Settings of the test.
const (
	partitions = 6
	writers    = 12
	readers    = 4
	// sessionTimeout is the instances' consumer group session timeout
	// (eskafka.Config's default): a member that stops heartbeating loses
	// its partitions after it.
	sessionTimeout = 10 * time.Second
	// healthTimeout bounds the wait for full health after a fault.
	healthTimeout = 150 * time.Second
)

// TestChaos runs three instances of the service on the three-broker
// cluster of CHAOS_KAFKA_DIR (bootstrap list in KAFKA_BROKERS) under steady
// writes and reads, and injects, one after the other, with the load going
// on and full health awaited after each:
//
//  1. broker-kill: SIGKILL of the broker that leads the most partitions of
//     the service's topics, restarted 15s later;
//  2. broker-freeze: SIGSTOP of the broker that leads the most partitions
//     at that point, SIGCONT 20s later;
//  3. instance-kill: SIGKILL of an instance (mid-transaction: the test logs
//     the transactions it had open), started again 30s later: past the
//     session timeout, and past the 20s transaction timeout and the
//     broker's 10s check of it, so that its partitions are back in time
//     only if the others take them and end its open transactions
//     themselves;
//  4. instance-freeze: SIGSTOP of an instance for 15s, longer than the
//     session timeout, then SIGCONT: a zombie, whose open transaction must
//     never commit;
//  5. all-brokers-down: every broker killed, started again 30s later: the
//     instances must report not ready, answer writes within the write
//     timeout (503 while Kafka is away), and recover by themselves.
//
// CHAOS_FAULTS (comma-separated names) runs a subset. At the end the
// history checker reads every topic back (see checkHistory) and every
// acknowledged write is read from every instance.
//
// The test fails on a broken guarantee: a write lost, applied twice or
// refused, a version gap, a changelog, outcome or view that disagrees with
// the events, a transaction open at a kill or freeze that committed, a
// read older than a write acknowledged before it began, an instance that
// exits, does not report not-ready while every broker is down, or does not
// recover within healthTimeout, or a topic without rf 3 and
// min.insync.replicas 2.
//
// Timings are figures: per fault, how long writes waited per partition,
// failed requests by status, the time back to full health, logged and
// written as JSON to the file CHAOS_REPORT names. The bounds of
// docs/reliability.md (a broker fault keeps writes waiting no longer than
// the cluster takes to fence the broker plus 5s, an instance kill no
// longer than the session timeout plus 5s, no write request answered later
// than the write timeout while every broker is down) are logged as held or
// NOT HELD; CHAOS_BOUNDS=fail makes one not held fail the test. The
// instances' logs and data go to CHAOS_WORK_DIR when set, with their
// Kafka clients' logs at CHAOS_KAFKA_LOG_LEVEL (KAFKA_LOG_LEVEL).
func TestChaos(t *testing.T) {
	dir, bootstrap := os.Getenv("CHAOS_KAFKA_DIR"), os.Getenv("KAFKA_BROKERS")
	if dir == "" || bootstrap == "" {
		t.Skip("CHAOS_KAFKA_DIR and KAFKA_BROKERS not set: the chaos test needs a cluster of scripts/kafka cluster (scripts/test runs it)")
	}
	brokers := strings.Split(bootstrap, ",")
	root := moduleRoot(t)
	c := newCluster(t, root, dir, brokers)
	bin := buildCatalog(t, root)
	service := fmt.Sprintf("chaos-%d", time.Now().Unix()%1000000)
	env := []string{
		"KAFKA_BROKERS=" + bootstrap, "SERVICE_NAME=" + service, fmt.Sprintf("PARTITIONS=%d", partitions),
		"REPLICATION_FACTOR=3", "LOG_LEVEL=info", "WRITE_TIMEOUT=" + writeTimeout.String(),
	}
	if l := os.Getenv("CHAOS_KAFKA_LOG_LEVEL"); l != "" {
		env = append(env, "KAFKA_LOG_LEVEL="+l)
	}
	work := os.Getenv("CHAOS_WORK_DIR") // kept: the instances' logs and data
	if work == "" {
		work = t.TempDir()
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	var instances []*instance
	for i := range 3 {
		instances = append(instances, newInstance(t, fmt.Sprintf("node%d", i+1), bin, work, env))
	}

	// The three start at once on a fresh service: none may fail on topic
	// metadata that has not reached every broker yet.
	start := time.Now()
	for _, in := range instances {
		in.start(t)
	}
	for _, in := range instances {
		in.waitReady(t, 120*time.Second)
	}
	t.Logf("3 instances of %s ready %v after they started", service, time.Since(start).Round(time.Millisecond))
	topics := serviceTopics(service)
	checkTopicSettings(t, c, topics)

	lb := newBalancer(instances)
	lb.run()
	defer lb.close()
	l := newLoad(t, lb, partitions)
	l.start(writers, readers)
	time.Sleep(10 * time.Second)
	t.Logf("warm-up: %s", l.summary())

	r := &runner{t: t, c: c, instances: instances, lb: lb, l: l, topics: topics, service: service}
	want := map[string]bool{}
	for _, f := range strings.Split(os.Getenv("CHAOS_FAULTS"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			want[f] = true
		}
	}
	for _, f := range []struct {
		name   string
		inject func(*fault)
	}{
		{"broker-kill", r.brokerKill},
		{"broker-freeze", r.brokerFreeze},
		{"instance-kill", r.instanceKill},
		{"instance-freeze", r.instanceFreeze},
		{"all-brokers-down", r.allBrokersDown},
	} {
		if len(want) > 0 && !want[f.name] {
			continue
		}
		r.run(f.name, f.inject)
		if t.Failed() {
			break
		}
	}

	time.Sleep(5 * time.Second)
	drainStart := time.Now()
	l.finish(120 * time.Second)
	t.Logf("load stopped (last writes drained in %v): %s", time.Since(drainStart).Round(time.Millisecond), l.summary())
	for _, s := range l.rejected {
		t.Errorf("a write was refused: %s", s)
	}
	if len(l.stale) > 0 {
		for i, s := range l.stale {
			if i == 20 {
				t.Errorf("... %d stale reads in all", len(l.stale))
				break
			}
			t.Errorf("stale read: %s", s)
		}
	}
	unacked := 0
	for _, w := range l.writes() {
		if !w.acked {
			unacked++
		}
	}
	if unacked > 0 {
		t.Errorf("%d writes were not acknowledged within 120s of the end of the load", unacked)
	}

	r.report()

	// The history: retried while it changes (the reaction to the last
	// deletions may still be on its way); a duplicate never goes away,
	// so retrying hides none.
	f := newFormats(t, brokers, service)
	var p *problems
	var h historyResult
	for attempt := 1; attempt <= 8; attempt++ {
		p, h = checkHistory(t, brokers, service, f, l.authors, r.fenced)
		if len(p.list) == 0 {
			break
		}
		t.Logf("history check, attempt %d: %d problems (first: %s)", attempt, len(p.list), p.list[0])
		time.Sleep(5 * time.Second)
	}
	p.report(t, "history")
	t.Logf("history: %s", h.stats)
	if len(p.list) == 0 {
		rb := checkReadBack(t, instances, l.authors, h, time.Now().Add(60*time.Second))
		rb.report(t, "read back")
	}
}

// serviceTopics are the topics of service.
func serviceTopics(service string) []string {
	var out []string
	for _, agg := range []string{"authors", "books"} {
		for _, s := range eskafka.AggregateTopics(service, agg).Specs() {
			out = append(out, s.Name)
		}
	}
	for _, s := range projection.BooksByAuthorTopics(service).Specs() {
		out = append(out, s.Name)
	}
	return append(out, service+".schemas")
}

// checkTopicSettings checks that the service created every topic with
// replication factor 3 and min.insync.replicas 2.
func checkTopicSettings(t *testing.T, c *cluster, topics []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	settings, err := c.topicSettings(ctx, topics)
	if err != nil {
		t.Fatalf("describe the topics: %v", err)
	}
	for _, topic := range topics {
		if s := settings[topic]; s != "rf 3, min.insync.replicas 2" {
			t.Errorf("topic %s has %s, want rf 3, min.insync.replicas 2", topic, s)
		}
	}
}

// fault is one injected fault and what it did.
type fault struct {
	name     string
	victim   string
	start    time.Time // injected
	end      time.Time // over: restarted, resumed
	fenced   time.Time // broker faults: the cluster fenced the broker
	healthy  time.Time // back to full health
	affected []int32   // the partitions the victim led or owned
	notes    []string
	// bound is the longest a write may wait, 0 for none; boundWhy says
	// where it comes from.
	bound    time.Duration
	boundWhy string
	figures  figures
}

func (f *fault) note(format string, args ...any) {
	f.notes = append(f.notes, fmt.Sprintf(format, args...))
}

// runner injects the faults.
type runner struct {
	t         *testing.T
	c         *cluster
	instances []*instance
	lb        *balancer
	l         *load
	topics    []string
	service   string
	faults    []*fault
	fenced    []fencedTxn
}

// run injects one fault, waits for full health and computes its figures.
func (r *runner) run(name string, inject func(*fault)) {
	t := r.t
	f := &fault{name: name}
	t.Logf("== %s", name)
	inject(f)
	if f.healthy.IsZero() {
		f.healthy = r.awaitHealth(f)
	}
	for _, in := range r.instances {
		if !in.running() {
			t.Errorf("%s: %s is not running (%s)", name, in.name, in.exitStatus())
		}
	}
	f.figures = compute(f, r.l)
	f.note("injected at %s, over at %s, healthy at %s", f.start.Format("15:04:05.000"), f.end.Format("15:04:05.000"), f.healthy.Format("15:04:05.000"))
	r.faults = append(r.faults, f)
	t.Logf("%s: %s", name, f.figures.summary(f))
	t.Logf("%s: the longest wait: %s", name, f.figures.worst)
	for _, n := range f.notes {
		t.Logf("%s: %s", name, n)
	}
	time.Sleep(5 * time.Second)
}

// awaitHealth waits, after f ended, until every instance is ready, no
// partition of the service is under-replicated, and writes begun after the
// fault ended were acknowledged at their first attempt on every partition:
// an author's, a book's, and a book's whose author is on that partition
// (healthKinds); it returns when the last of these happened. A write that
// waits on the fault's tail would otherwise be counted against the next.
func (r *runner) awaitHealth(f *fault) time.Time {
	t := r.t
	deadline := f.end.Add(healthTimeout)
	var last string
	for time.Now().Before(deadline) {
		var missing []string
		notReady := r.lb.notReady()
		for _, in := range r.instances {
			if why, ok := notReady[in]; ok {
				missing = append(missing, fmt.Sprintf("%s not ready (%s)", in.name, why))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		under, err := r.c.underReplicated(ctx, r.topics)
		cancel()
		if err != nil {
			missing = append(missing, "metadata: "+err.Error())
		} else if len(under) > 0 {
			missing = append(missing, fmt.Sprintf("%d partitions under-replicated (%s…)", len(under), under[0]))
		}
		normal := map[string]time.Time{}
		for _, w := range r.l.writes() {
			if w.acked && w.attempts == 1 && w.first.After(f.end) {
				for _, k := range healthKinds(w) {
					if at, ok := normal[k]; !ok || w.ackedAt.Before(at) {
						normal[k] = w.ackedAt
					}
				}
			}
		}
		var unseen []string
		for p := range int32(partitions) {
			for _, kind := range []string{"author", "book", "author check"} {
				if k := healthKind(kind, p); normal[k].IsZero() {
					unseen = append(unseen, k)
				}
			}
		}
		if len(unseen) > 0 {
			missing = append(missing, "no write acknowledged at its first attempt yet for: "+strings.Join(unseen, ", "))
		}
		if len(missing) == 0 {
			// Healthy since the latest of: instances ready (now, at
			// the latest), replicas in sync, writes normal.
			at := slices.MaxFunc(slices.Collect(maps.Values(normal)), func(a, b time.Time) int { return a.Compare(b) })
			for _, ch := range r.lb.changes() {
				if ch.at.After(at) {
					at = ch.at
				}
			}
			return at
		}
		last = strings.Join(missing, "; ")
		time.Sleep(250 * time.Millisecond)
	}
	t.Errorf("%s: not back to full health within %v of its end: %s", f.name, healthTimeout, last)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Logf("%s: %s", f.name, r.c.openTransactions(ctx, r.topics))
	cancel()
	// What an instance that stays not ready is doing shows in its
	// goroutines: a stage that waits silently logs nothing.
	for in := range r.lb.notReady() {
		in.dumpGoroutines(t)
	}
	return time.Now()
}

// healthKinds returns what a write acknowledged at its first attempt shows
// to work again: writes of its aggregate on its partition, and for a
// book's creation, the check of its author on the author's partition (an
// instance must be able to read it, from its store or the owner's).
func healthKinds(w *writeOp) []string {
	kind := "book"
	if strings.HasSuffix(w.op, "-author") {
		kind = "author"
	}
	kinds := []string{healthKind(kind, w.partition)}
	if w.op == "create-book" {
		kinds = append(kinds, healthKind("author check", w.authorPartition))
	}
	return kinds
}

// healthKind names one kind of write on partition p, for awaitHealth.
func healthKind(kind string, p int32) string { return fmt.Sprintf("%s on %d", kind, p) }

// brokerKill kills the broker that leads the most partitions and restarts
// it 15s later.
func (r *runner) brokerKill(f *fault) {
	r.brokerFault(f, "kill", 15*time.Second, "restart")
}

// brokerFreeze freezes the broker that leads the most partitions for 20s.
func (r *runner) brokerFreeze(f *fault) {
	r.brokerFault(f, "pause", 20*time.Second, "resume")
}

func (r *runner) brokerFault(f *fault, verb string, lasting time.Duration, undo string) {
	t := r.t
	victim, counts := r.c.topLeader(t, r.topics)
	f.victim = fmt.Sprintf("broker %d", victim)
	f.affected = r.c.ledBy(t, eskafka.AggregateTopics(r.service, "authors").Commands, victim)
	coordinated := 0
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	for _, b := range r.c.coordinators(ctx, r.txnIDs()) {
		if b == victim {
			coordinated++
		}
	}
	cancel()
	f.note("partitions led per broker: %v; broker %d leads partitions %v of the authors' commands and coordinates %d of the %d stage transactions", counts, victim, f.affected, coordinated, len(r.txnIDs()))
	f.start = time.Now()
	r.c.node(r.t, verb, victim)
	fenced := make(chan time.Time, 1)
	go func() { fenced <- r.c.awaitFenced(r.topics, victim, lasting+30*time.Second) }()
	time.Sleep(time.Until(f.start.Add(lasting)))
	r.c.node(r.t, undo, victim)
	f.end = time.Now()
	f.fenced = <-fenced
	if f.fenced.IsZero() || f.fenced.After(f.end) {
		f.note("the cluster did not fence broker %d while it was %s", victim, map[string]string{"kill": "dead", "pause": "frozen"}[verb])
		f.fenced = time.Time{}
		f.bound, f.boundWhy = lasting+5*time.Second, "the fault's length plus 5s (no fencing seen)"
	} else {
		f.bound, f.boundWhy = f.fenced.Sub(f.start)+5*time.Second, "the time the cluster took to fence the broker plus 5s"
	}
}

// txnIDs are the transactional ids of every stage of every instance.
func (r *runner) txnIDs() []string {
	var out []string
	for _, in := range r.instances {
		out = append(out, r.instanceTxnIDs(in)...)
	}
	return out
}

func (r *runner) instanceTxnIDs(in *instance) []string {
	id := in.instanceID(r.t)
	// Overlapping stages (the service's default) have a second producer
	// each, its id suffixed.
	overlap := os.Getenv("STAGE_OVERLAP") != "false"
	var out []string
	for _, stage := range []string{"authors.processor", "books.processor", "booksbyauthor.links", "booksbyauthor.view"} {
		out = append(out, r.service+"."+stage+"."+id)
		if overlap {
			out = append(out, r.service+"."+stage+"."+id+".overlap")
		}
	}
	return out
}

// owned returns the partitions of the authors and books stages that in
// owns, as its GET /metadata says.
func (r *runner) owned(in *instance) []int32 {
	resp, err := http.Get(in.url + "/metadata")
	if err != nil {
		r.t.Fatalf("GET %s/metadata: %v", in.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m struct {
		Stages map[string]struct {
			Local map[int32]string `json:"local"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		r.t.Fatalf("GET %s/metadata: %v: %s", in.name, err, oneLine(b))
	}
	set := map[int32]bool{}
	for _, stage := range []string{"authors", "books"} {
		for p := range m.Stages[stage].Local {
			set[p] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// recordOpen records the transactions in had open right after the fault
// and still 3s later: those must never commit. A transaction seen open
// only at first may have had its commit request on the way when the
// process was killed or frozen (the coordinator still says Ongoing while
// it writes PrepareCommit): that commit is legitimate. So is, when the
// process was frozen (not killed), the commit of a transaction that already
// holds its consumer offsets (a partition of __consumer_offsets; with
// overlapping transactions, one whose offsets wait for the commit before
// it): the process was inside its commit, the group took
// the offsets while the member was still in it (KIP-447), and the next
// owner of its partitions waits until that transaction ends (a fetch of
// the offsets requires them stable); a frozen process may send its commit
// when it wakes, a commit franz-go decided before the freeze.
func (r *runner) recordOpen(f *fault, in *instance, what string) {
	ends, err := endOffsets(r.c)
	if err != nil {
		f.note("%v: the open transactions of %s are checked from the start of each partition", err, in.name)
	}
	first, err := openTransactions(r.c, r.instanceTxnIDs(in))
	var bounds map[string]map[string]map[int32]int64
	if err == nil {
		if bounds, err = transactionBounds(r.c, first, ends); err != nil {
			f.note("%v: the open transactions of %s are checked from the start of each partition", err, in.name)
			err = nil
		}
		time.Sleep(3 * time.Second)
		var later []kadm.DescribedTransaction
		if later, err = openTransactions(r.c, r.instanceTxnIDs(in)); err == nil {
			first = slices.DeleteFunc(first, func(tx kadm.DescribedTransaction) bool {
				return !slices.ContainsFunc(later, func(l kadm.DescribedTransaction) bool {
					return l.TxnID == tx.TxnID && l.ProducerID == tx.ProducerID && l.ProducerEpoch == tx.ProducerEpoch
				})
			})
		}
	}
	if err != nil {
		f.note("describe the transactions of %s: %v", in.name, err)
		return
	}
	var parts, ending []string
	for _, tx := range first {
		// Only a frozen process can send the commit it had decided: a
		// killed one cannot, and an EndTxn it had sent would have moved
		// the transaction out of Ongoing by the second look.
		if _, ok := tx.Topics["__consumer_offsets"]; ok && what == "frozen" {
			ending = append(ending, strings.TrimPrefix(tx.TxnID, r.service+"."))
			continue
		}
		r.fenced = append(r.fenced, fencedTxn{instance: in.name, fault: what, txnID: tx.TxnID, producer: tx.ProducerID, epoch: tx.ProducerEpoch, from: bounds[tx.TxnID]})
		parts = append(parts, fmt.Sprintf("%s (producer %d, epoch %d, %d topics)", strings.TrimPrefix(tx.TxnID, r.service+"."), tx.ProducerID, tx.ProducerEpoch, len(tx.Topics)))
	}
	if len(ending) > 0 {
		f.note("%s was committing the offsets of %d transactions when it was %s (they may commit): %s", in.name, len(ending), what, strings.Join(ending, ", "))
	}
	if len(parts) == 0 {
		f.note("%s had no transaction open (and not ending) when it was %s", in.name, what)
		return
	}
	f.note("%s had %d transactions open, and not ending, when it was %s (they must never commit): %s", in.name, len(parts), what, strings.Join(parts, ", "))
}

// awaitOngoing waits (up to 10s) until in has a transaction open, so that
// the fault lands mid-transaction; whether it did is told by recordOpen,
// after the fault.
func (r *runner) awaitOngoing(f *fault, in *instance) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if open, err := openTransactions(r.c, r.instanceTxnIDs(in)); err == nil && len(open) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.note("%s had no transaction open for 10s before the fault", in.name)
}

// instanceKill kills an instance and starts it again instanceDownFor later.
func (r *runner) instanceKill(f *fault) {
	t := r.t
	in := r.instances[1]
	f.victim = in.name
	f.affected = r.owned(in)
	r.awaitOngoing(f, in)
	f.start = time.Now()
	in.kill(t)
	r.recordOpen(f, in, "killed")
	time.Sleep(time.Until(f.start.Add(instanceDownFor)))
	in.start(t)
	f.end = time.Now()
	f.note("%s ready %v after its restart", in.name, in.waitReady(t, 120*time.Second).Round(time.Millisecond))
	f.bound, f.boundWhy = sessionTimeout+5*time.Second, "the session timeout plus 5s"
}

// instanceDownFor is how long a killed instance stays down: longer than
// its open transactions would stay open if nobody ended them (the stages'
// 20s transaction timeout, checked by the broker every 10s).
const instanceDownFor = 30 * time.Second

// instanceFreeze freezes an instance for longer than the session timeout.
func (r *runner) instanceFreeze(f *fault) {
	t := r.t
	in := r.instances[2]
	f.victim = in.name
	f.affected = r.owned(in)
	r.awaitOngoing(f, in)
	f.start = time.Now()
	in.signal(t, syscall.SIGSTOP)
	r.recordOpen(f, in, "frozen")
	time.Sleep(time.Until(f.start.Add(sessionTimeout + 5*time.Second)))
	in.signal(t, syscall.SIGCONT)
	f.end = time.Now()
}

// allBrokersDown kills every broker and starts them again 30s later.
func (r *runner) allBrokersDown(f *fault) {
	t := r.t
	f.victim = "every broker"
	f.affected = []int32{0, 1, 2, 3, 4, 5}
	f.start = time.Now()
	for id := range int32(len(r.c.brokers)) {
		r.c.node(t, "kill", id+1)
	}
	time.Sleep(time.Until(f.start.Add(30 * time.Second)))
	r.c.run(t, "cluster", fmt.Sprint(len(r.c.brokers)))
	f.end = time.Now()
	// Readiness while Kafka was away.
	for i, in := range r.instances {
		var notReady, readyAgain time.Time
		for _, ch := range r.lb.changes() {
			if ch.instance != i || ch.at.Before(f.start) {
				continue
			}
			if ch.status != http.StatusOK && notReady.IsZero() {
				notReady = ch.at
			}
			if ch.status == http.StatusOK && !notReady.IsZero() && readyAgain.IsZero() {
				readyAgain = ch.at
			}
		}
		if notReady.IsZero() || notReady.After(f.end) {
			t.Errorf("all-brokers-down: %s never reported not ready while every broker was down", in.name)
			continue
		}
		f.note("%s reported not ready %v after the brokers went down", in.name, notReady.Sub(f.start).Round(time.Millisecond))
	}
}

// report logs the figures of every fault and writes them to CHAOS_REPORT.
func (r *runner) report() {
	t := r.t
	var out []faultReport
	for _, f := range r.faults {
		fig := f.figures
		t.Logf("figures %-16s %s", f.name, fig.summary(f))
		if f.bound > 0 {
			held := fig.maxWait <= f.bound
			t.Logf("bound   %-16s longest write wait %v, bound %v (%s): %s", f.name, fig.maxWait.Round(time.Millisecond), f.bound.Round(time.Millisecond), f.boundWhy, map[bool]string{true: "held", false: "NOT HELD"}[held])
			if !held && os.Getenv("CHAOS_BOUNDS") == "fail" {
				t.Errorf("%s: a write waited %v, longer than the bound of %v (%s)", f.name, fig.maxWait.Round(time.Millisecond), f.bound.Round(time.Millisecond), f.boundWhy)
			}
		}
		if f.name == "all-brokers-down" {
			held := fig.longestAttempt <= writeTimeout+time.Second
			t.Logf("bound   %-16s longest write request %v, bound %v (the write timeout plus 1s): %s", f.name, fig.longestAttempt.Round(time.Millisecond), writeTimeout+time.Second, map[bool]string{true: "held", false: "NOT HELD"}[held])
			if !held && os.Getenv("CHAOS_BOUNDS") == "fail" {
				t.Errorf("all-brokers-down: a write hung %v, past the write timeout of %v", fig.longestAttempt.Round(time.Millisecond), writeTimeout)
			}
		}
		m := faultReport{
			Fault: f.name, Victim: f.victim, AffectedPartitions: f.affected,
			FaultSeconds: f.end.Sub(f.start).Seconds(), RecoverySeconds: f.healthy.Sub(f.end).Seconds(),
			LongestWaitSeconds: fig.maxWait.Seconds(), MedianPartitionWaitSeconds: fig.medianWait.Seconds(),
			AffectedLongestWaitSeconds: fig.affectedMaxWait.Seconds(), WaitByPartitionSeconds: fig.waitByPartition,
			LongestAttemptSeconds: fig.longestAttempt.Seconds(), Writes: fig.writes, Reads: fig.reads,
			FailedWrites: fig.failedWrites, FailedReads: fig.failedReads, BoundSeconds: f.bound.Seconds(), Notes: f.notes,
		}
		if !f.fenced.IsZero() {
			m.FencedSeconds = f.fenced.Sub(f.start).Seconds()
		}
		out = append(out, m)
	}
	if path := os.Getenv("CHAOS_REPORT"); path != "" {
		b, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Errorf("write %s: %v", path, err)
		}
	}
}

// faultReport is one fault's figures in the JSON report.
type faultReport struct {
	Fault                      string            `json:"fault"`
	Victim                     string            `json:"victim"`
	AffectedPartitions         []int32           `json:"affectedPartitions"`
	FaultSeconds               float64           `json:"faultSeconds"`
	FencedSeconds              float64           `json:"fencedSeconds,omitempty"`
	RecoverySeconds            float64           `json:"recoverySeconds"`
	LongestWaitSeconds         float64           `json:"longestWaitSeconds"`
	MedianPartitionWaitSeconds float64           `json:"medianPartitionWaitSeconds"`
	AffectedLongestWaitSeconds float64           `json:"affectedLongestWaitSeconds"`
	WaitByPartitionSeconds     map[int32]float64 `json:"waitByPartitionSeconds"`
	LongestAttemptSeconds      float64           `json:"longestAttemptSeconds"`
	Writes                     int               `json:"writes"`
	Reads                      int               `json:"reads"`
	FailedWrites               map[string]int    `json:"failedWrites"`
	FailedReads                map[string]int    `json:"failedReads"`
	BoundSeconds               float64           `json:"boundSeconds,omitempty"`
	Notes                      []string          `json:"notes"`
}
