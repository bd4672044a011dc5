package crashtest

// The checks after a restart: read-back over HTTP, then the events and
// changelog topics against the model and against each other.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/catalogavro"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// recordFormat decodes the values of the authors events and changelog
// topics: it is the one place here that knows their record format. Values
// are Avro single-object frames (docs/wire-format.md), decoded
// with the domain's types as reader schemas; a writer schema other than
// those is looked up in the service's schema registry topic. Swap this for
// another format, and the checks stay as they are.
type recordFormat struct {
	events *avro.Union[author.Event]
	states *avro.Value[author.State]
}

func newRecordFormat(t *testing.T, brokers []string, service string) (*recordFormat, error) {
	reg, err := openRegistry(t, brokers, service)
	if err != nil {
		return nil, err
	}
	c, err := catalogavro.New(reg)
	if err != nil {
		return nil, err
	}
	return &recordFormat{events: c.AuthorEvents, states: c.AuthorState}, nil
}

func (f *recordFormat) event(b []byte) (author.Event, error) { return f.events.Decode(b) }

func (f *recordFormat) state(b []byte) (author.State, error) { return f.states.Decode(b) }

// retryUnknownFor bounds the retries of one unknown write: the
// transaction timeout and the broker's check interval, with room.
const retryUnknownFor = 45 * time.Second

// retryUnknown sends again every unknown write that carried an
// Idempotency-Key, as a client would after a crash: the answer must be a
// success (the model's), and the write then counts as acked. A 503 or
// 504 is sent again with the same key, as the API tells clients to, for
// up to retryUnknownFor: an instance killed inside a transaction leaves
// it open until the instance that takes its partitions fences it (after
// the session timeout; eskafka/fence.go), or failing that until the
// coordinator aborts it (the stages' 20 s transaction timeout, checked
// every 10 s by the broker), and until then no read_committed reader of
// its partitions, the outcome followers included, sees what was written
// there after it.
func retryUnknown(t *testing.T, w *workload, url string) (retried int) {
	t.Helper()
	for _, a := range w.authors {
		n, u := a.ackedPrefix()
		if u == nil || u.idemKey == "" {
			continue
		}
		status, body, err := w.send(url, a, n)
		for deadline, tries := time.Now().Add(retryUnknownFor), 1; err == nil && (status == 503 || status == 504) && time.Now().Before(deadline); tries++ {
			t.Logf("retry %d of %s %s (Idempotency-Key %s) after the restart: %d, sent again", tries, a.code, u.kind, u.idemKey, status)
			time.Sleep(500 * time.Millisecond)
			status, body, err = w.send(url, a, n)
		}
		if err != nil || status < 200 || status >= 300 {
			t.Errorf("retry of %s %s (Idempotency-Key %s) after the restart: %d %v %s\n%v", a.code, u.kind, u.idemKey, status, err, oneLine(body), a)
			continue
		}
		u.outcome, u.retried = acked, true
		retried++
		w.checkAnswer(a, n, status, body, " (retried after the restart)")
	}
	return retried
}

// logOpenTransactions logs the transactions of service that are not
// finished, as the broker describes them.
func logOpenTransactions(t *testing.T, brokers []string, service string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Logf("describe transactions: %v", err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	txns, err := kadm.NewClient(cl).DescribeTransactions(ctx)
	if err != nil {
		t.Logf("describe transactions: %v", err)
	}
	open := 0
	for _, d := range txns.Sorted() {
		if !strings.HasPrefix(d.TxnID, service+".") || d.State == "Empty" || strings.HasPrefix(d.State, "Complete") {
			continue
		}
		open++
		var parts []string
		for _, tp := range d.Topics.Sorted() {
			parts = append(parts, fmt.Sprintf("%s%v", strings.TrimPrefix(tp.Topic, service+"."), tp.Partitions))
		}
		t.Logf("  transaction %s: %s since %v ago (producer %d, epoch %d, timeout %v) on %v",
			strings.TrimPrefix(d.TxnID, service+"."), d.State, time.Since(time.UnixMilli(d.StartTimestamp)).Round(time.Millisecond),
			d.ProducerID, d.ProducerEpoch, time.Duration(d.TimeoutMillis)*time.Millisecond, parts)
	}
	if open == 0 {
		t.Logf("  no transaction of the service is open")
	}
}

// checkReadBack reads every author over HTTP: it must show the state after
// its acked writes, or after those and its unknown write (which then counts
// as applied). Answers 503 (partitions restoring or owned by a member that
// has not timed out yet) are retried until timeout.
func checkReadBack(t *testing.T, w *workload, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	bad := 0
	for _, a := range w.authors {
		n, u := a.ackedPrefix()
		_, sAcked := a.expected(n)
		got, exists, err := getAuthor(w.hc, url, a.code, deadline)
		if err != nil {
			t.Fatalf("read back %s: %v", a.code, err)
		}
		matches := func(s author.State) bool {
			if !s.Exists() {
				return !exists
			}
			return exists && got == viewOf(s)
		}
		switch {
		case matches(sAcked):
			a.resolved = n
		case u != nil && matches(func() author.State { _, s := a.expected(n + 1); return s }()):
			a.resolved = n + 1
		default:
			// Compare the topics with the acked writes too: they
			// tell whether Kafka or only the store lost a write.
			a.resolved = n
			bad++
			if bad <= 20 {
				t.Errorf("GET /authors/%s after the restart: exists=%v %+v, want %+v (after the acked writes)%s\n%v",
					a.code, exists, got, viewOf(sAcked), orUnknown(a, n, u), a)
			}
		}
	}
	if bad > 20 {
		t.Errorf("... %d authors in all read back wrong", bad)
	}
}

func orUnknown(a *authorRun, n int, u *op) string {
	if u == nil {
		return ""
	}
	_, s := a.expected(n + 1)
	return fmt.Sprintf(" or %+v (after the unknown %s too)", viewOf(s), u.kind)
}

// getAuthor reads one author, retrying 503s and transport errors until
// deadline.
func getAuthor(hc *http.Client, url, code string, deadline time.Time) (authorView, bool, error) {
	var last string
	for {
		resp, err := hc.Get(url + "/authors/" + code)
		if err == nil {
			var v authorView
			var derr error
			switch resp.StatusCode {
			case http.StatusOK:
				derr = json.NewDecoder(resp.Body).Decode(&v)
			case http.StatusNotFound:
			default:
				last = resp.Status
			}
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && derr != nil:
				return v, false, fmt.Errorf("undecodable author: %w", derr)
			case resp.StatusCode == http.StatusOK:
				return v, true, nil
			case resp.StatusCode == http.StatusNotFound:
				return v, false, nil
			case resp.StatusCode != http.StatusServiceUnavailable:
				return v, false, fmt.Errorf("GET answered %s", resp.Status)
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return authorView{}, false, fmt.Errorf("no answer but 503s or errors until the deadline; last: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitCaughtUp waits until group has committed offsets at the end of every
// partition of topic: every command written so far has been processed.
// Past a committed offset, only transaction markers (of a transactional
// writer of topic, such as the reaction of the books-by-author view) may
// follow: a consumer commits the offset after the last record it got.
func waitCaughtUp(t *testing.T, brokers []string, group, topic string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var behind []string
	for {
		behind = behind[:0]
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		var offs kadm.OffsetResponses
		if err == nil {
			offs, err = adm.FetchOffsets(ctx, group)
		}
		if err == nil {
			from, to := map[int32]int64{}, map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) {
				c, ok := offs.Lookup(topic, o.Partition)
				if o.Offset > 0 && (!ok || c.Err != nil || c.At < o.Offset) {
					behind = append(behind, fmt.Sprintf("%d: committed %d of %d", o.Partition, c.At, o.Offset))
					from[o.Partition], to[o.Partition] = max(c.At, 0), o.Offset
				}
			})
			if len(behind) == 0 {
				return time.Since(start)
			}
			var data bool
			if data, err = committedDataBetween(ctx, brokers, topic, from, to); err == nil && !data {
				return time.Since(start)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s did not process %s to its end within %v: err %v, behind %v", group, topic, timeout, err, behind)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// committedDataBetween reports whether partition p of topic holds a
// committed record that is not a transaction marker between offsets from[p]
// and to[p], for any p. Records of an open transaction count as data (they
// are waited for, up to a second).
func committedDataBetween(ctx context.Context, brokers []string, topic string, from, to map[int32]int64) (bool, error) {
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	for p, o := range from {
		offsets[topic][p] = kgo.NewOffset().At(o)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return false, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	left := maps.Clone(to)
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return true, nil
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return false, errs[0].Err
		}
		data := false
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			data = data || !r.Attrs.IsControl()
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
		if data {
			return true, nil
		}
	}
	return false, nil
}

// topicRecord is a committed record of a topic.
type topicRecord struct {
	partition int32
	offset    int64
	key       string
	value     []byte // nil: tombstone
	msgID     string
	version   string
	typ       string // the type header
}

func (r topicRecord) String() string {
	return fmt.Sprintf("%d@%d key=%s msgId=%s version=%s value=%s", r.partition, r.offset, r.key, r.msgID, r.version, oneLine(r.value))
}

// readTopic returns every committed record of topic (read_committed, up to
// the last stable offsets), in offset order per partition.
func readTopic(brokers []string, topic string) ([]topicRecord, error) {
	return readTopicAs(brokers, topic, true)
}

// readTopicAs returns the records of topic in offset order per partition:
// with committed, those committed (read_committed, up to the last stable
// offsets); else every record written so far, of open and aborted
// transactions too (read_uncommitted, up to the high watermarks).
func readTopicAs(brokers []string, topic string, committed bool) ([]topicRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs, err := kafkatest.ReadTopic(ctx, brokers, topic, committed)
	if err != nil {
		return nil, err
	}
	out := make([]topicRecord, 0, len(recs))
	for _, r := range recs {
		tr := topicRecord{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: r.Value}
		for _, h := range r.Headers {
			switch h.Key {
			case eskafka.HeaderMsgID:
				tr.msgID = string(h.Value)
			case eskafka.HeaderVersion:
				tr.version = string(h.Value)
			case eskafka.HeaderType:
				tr.typ = string(h.Value)
			}
		}
		out = append(out, tr)
	}
	return out, nil
}

// checkTopics checks the events and changelog topics of the authors; the
// reads are retried a few times, for a commit becomes visible on the
// topics one partition after the other. Duplicates never go away, so
// retrying hides none.
func checkTopics(t *testing.T, w *workload, brokers []string, service string, topics eskafka.Topics) {
	t.Helper()
	format, err := newRecordFormat(t, brokers, service)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for attempt := 1; attempt <= 3; attempt++ {
		var stats string
		problems, stats = topicProblems(w, brokers, topics, format)
		if len(problems) == 0 {
			t.Logf("topics agree with the acked writes and with each other: %s", stats)
			return
		}
		t.Logf("topic check, attempt %d: %d problems (first: %s)", attempt, len(problems), problems[0])
		time.Sleep(time.Second)
	}
	reportProblems(t, problems)
}

// topicProblems reads the topics once and returns what is wrong.
func topicProblems(w *workload, brokers []string, topics eskafka.Topics, format *recordFormat) (problems []string, stats string) {
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	events, err := readTopic(brokers, topics.Events)
	if err != nil {
		return []string{err.Error()}, ""
	}
	changelog, err := readTopic(brokers, topics.Changelog)
	if err != nil {
		return []string{err.Error()}, ""
	}

	// (b) Every accepted event exactly once: no (msgId, version) twice.
	seen := map[[2]string]topicRecord{}
	byKey := map[string][]topicRecord{}
	for _, r := range events {
		id := [2]string{r.msgID, r.version}
		if r.msgID == "" || r.version == "" {
			fail("event without msgId or version header: %v", r)
		} else if first, dup := seen[id]; dup {
			fail("duplicate event (msgId %s, version %s): %v and %v", r.msgID, r.version, first, r)
		} else {
			seen[id] = r
		}
		byKey[r.key] = append(byKey[r.key], r)
	}
	latest := map[string]topicRecord{}
	for _, r := range changelog {
		latest[r.key] = r // one key lives in one partition: offset order
	}

	ours := map[string]bool{}
	onlyUpdated, withDelete := 0, 0
	for _, a := range w.authors {
		ours[a.code] = true
		wantEvents, wantState := a.expected(a.resolved)
		recs := byKey[a.code]

		// (b) The events of the key are exactly those of its applied
		// writes, in order, with their versions.
		var gotEvents []versionedEvent
		decodeOK := true
		for _, r := range recs {
			ev, err := format.event(r.value)
			if err != nil {
				fail("undecodable event %v: %v", r, err)
				decodeOK = false
				continue
			}
			v, err := strconv.ParseInt(r.version, 10, 64)
			if err != nil {
				fail("event %v: version header is not an integer", r)
			}
			gotEvents = append(gotEvents, versionedEvent{event: ev, version: v})
		}
		if !decodeOK {
			continue
		}
		if !reflect.DeepEqual(gotEvents, wantEvents) {
			fail("events of %s: got %s, want %s\n%v", a.code, describe(gotEvents), describe(wantEvents), a)
		}
		if !slices.ContainsFunc(a.ops[:a.resolved], func(o *op) bool { return o.kind == opDelete }) {
			onlyUpdated++
			if int64(len(recs)) != wantState.Version {
				fail("%s was only created and updated: %d events, but its version is %d", a.code, len(recs), wantState.Version)
			}
		} else {
			withDelete++
		}

		// (c) The latest changelog record is the fold of the events.
		var folded author.State
		for _, e := range gotEvents {
			folded = author.Evolve(folded, e.event)
		}
		cl, ok := latest[a.code]
		switch {
		case !folded.Exists():
			if ok && cl.value != nil {
				fail("changelog of %s: latest record %v, want a tombstone or none (its events fold to no author)", a.code, cl)
			}
		case !ok || cl.value == nil:
			fail("changelog of %s: no state (latest %v), want %+v folded from its events", a.code, cl, folded)
		default:
			st, err := format.state(cl.value)
			if err != nil {
				fail("changelog of %s: undecodable state %v: %v", a.code, cl, err)
			} else if st != folded {
				fail("changelog of %s: latest state %+v, events fold to %+v", a.code, st, folded)
			}
		}
	}
	for k, recs := range byKey {
		if !ours[k] {
			fail("events of key %q that no client wrote: %v", k, recs)
		}
	}
	for k, r := range latest {
		if !ours[k] {
			fail("changelog record of key %q that no client wrote: %v", k, r)
		}
	}
	stats = fmt.Sprintf("%d events, %d changelog records, %d keys (%d only created and updated, %d deleted and created again)",
		len(events), len(changelog), len(w.authors), onlyUpdated, withDelete)
	return problems, stats
}

func describe(evs []versionedEvent) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = fmt.Sprintf("v%d %T%+v", e.version, e.event, e.event)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// reportProblems fails t with the first 30 problems and their count.
func reportProblems(t *testing.T, problems []string) {
	t.Helper()
	for i, p := range problems {
		if i == 30 {
			t.Errorf("... %d problems in all", len(problems))
			return
		}
		t.Error(p)
	}
}

// openRegistry opens the service's schema registry topic for the test.
func openRegistry(t *testing.T, brokers []string, service string) (*schemaregistry.Registry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := schemaregistry.New(ctx, brokers, service+".schemas")
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	t.Cleanup(reg.Close)
	return reg, nil
}
