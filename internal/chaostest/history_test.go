package chaostest

// The history checker: after the faults, every topic is read back
// (read_committed) and checked against the scripts the writers ran and
// against itself, and every acknowledged write is read from every instance.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/catalogavro"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/domain/booksbyauthor"
	"github.com/bookscatalog/catalog/internal/projection"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// record is a committed record of a topic.
type record struct {
	topic     string
	partition int32
	offset    int64
	key       string
	value     []byte // nil: tombstone
	msgID     string
	version   string
	typ       string
	producer  int64
	epoch     int16
}

func (r record) String() string {
	return fmt.Sprintf("%s/%d@%d key=%s msgId=%s version=%s type=%s producer=%d/%d value=%s",
		r.topic, r.partition, r.offset, r.key, r.msgID, r.version, r.typ, r.producer, r.epoch, oneLine(r.value))
}

// readTopic returns every committed record of topic (read_committed, up to
// the last stable offsets), in offset order per partition.
func readTopic(brokers []string, topic string) ([]record, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	recs, err := kafkatest.ReadTopic(ctx, brokers, topic, true)
	if err != nil {
		return nil, err
	}
	out := make([]record, 0, len(recs))
	for _, r := range recs {
		rec := record{topic: topic, partition: r.Partition, offset: r.Offset, key: string(r.Key), value: r.Value, producer: r.ProducerID, epoch: r.ProducerEpoch}
		for _, h := range r.Headers {
			switch h.Key {
			case eskafka.HeaderMsgID:
				rec.msgID = string(h.Value)
			case eskafka.HeaderVersion:
				rec.version = string(h.Value)
			case eskafka.HeaderType:
				rec.typ = string(h.Value)
			}
		}
		out = append(out, rec)
	}
	return out, nil
}

// formats decodes the service's records: Avro single-object frames, with
// the domain's types as reader schemas and the service's schema registry
// topic for writer schemas (docs/wire-format.md).
type formats struct {
	authorEvents *avro.Union[author.Event]
	authorStates *avro.Value[author.State]
	bookEvents   *avro.Union[book.Event]
	bookStates   *avro.Value[book.State]
	bookCommands *avro.Union[book.Command]
	outcomes     *avro.Value[eskafka.Outcome]
	views        *avro.Value[booksbyauthor.View]
}

func newFormats(t *testing.T, brokers []string, service string) *formats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := schemaregistry.New(ctx, brokers, service+".schemas", schemaregistry.WithExistingTopic())
	if err != nil {
		t.Fatalf("schema registry: %v", err)
	}
	t.Cleanup(reg.Close)
	c, err := catalogavro.New(reg)
	if err != nil {
		t.Fatalf("codecs: %v", err)
	}
	return &formats{
		authorEvents: c.AuthorEvents, authorStates: c.AuthorState,
		bookEvents: c.BookEvents, bookStates: c.BookState, bookCommands: c.BookCommands,
		outcomes: c.Outcomes, views: c.Views,
	}
}

// aggregate is what the checker needs of one aggregate type: decoding, the
// fold, and the state's shape for comparing.
type aggregate[S, E any] struct {
	name    string
	decode  func([]byte) (E, error)
	state   func([]byte) (S, error)
	evolve  func(S, E) S
	version func(S) int64
	exists  func(S) bool
	norm    func(S) S // makes equal states compare equal (nil and empty slices)
}

// stream is one key's committed events, decoded.
type stream[E any] struct {
	recs   []record
	events []E
}

// checkAggregate checks the events, changelog and results topics of one
// aggregate against each other and against want (the event sequences each
// key of the scripts may have; more than one when its last write was never
// acknowledged), and returns each key's folded state. ops gives, per key,
// the acknowledged writes in order with the number of events each made,
// for matching every 2xx to its outcome.
func checkAggregate[S, E any](p *problems, agg aggregate[S, E], events, changelog, results []record, outcomes func([]byte) (eskafka.Outcome, error),
	want map[string][][]E, acked map[string][]ackedWrite, answer func(S) any) map[string]S {
	streams := map[string]*stream[E]{}
	for _, r := range events {
		s := streams[r.key]
		if s == nil {
			s = &stream[E]{}
			streams[r.key] = s
		}
		ev, err := agg.decode(r.value)
		if err != nil {
			p.fail("%s: undecodable event %v: %v", agg.name, r, err)
			continue
		}
		s.recs = append(s.recs, r)
		s.events = append(s.events, ev)
	}
	latest := map[string]record{}
	for _, r := range changelog {
		latest[r.key] = r
	}
	byMsg := map[string][]eskafka.Outcome{}
	for _, r := range results {
		o, err := outcomes(r.value)
		if err != nil {
			p.fail("%s: undecodable outcome %v: %v", agg.name, r, err)
			continue
		}
		if o.Key != r.key {
			p.fail("%s: outcome of %s under key %s: %v", agg.name, o.Key, r.key, r)
		}
		byMsg[o.MsgID] = append(byMsg[o.MsgID], o)
	}

	folded := map[string]S{}
	for key, s := range streams {
		// Versions 1..n since each creation, with no gap or repeat; one
		// run of events per msgId.
		var st S
		seen := map[string]int{} // msgId -> index of the run's first event
		var states []S           // the state after each event
		for i, ev := range s.events {
			r := s.recs[i]
			v, err := strconv.ParseInt(r.version, 10, 64)
			if err != nil || v != agg.version(st)+1 {
				p.fail("%s %s: event %d has version %q, want %d (gap or repeat): %v", agg.name, key, i, r.version, agg.version(st)+1, r)
			}
			if r.msgID == "" {
				p.fail("%s %s: event without msgId: %v", agg.name, key, r)
			} else if first, ok := seen[r.msgID]; ok && s.recs[i-1].msgID != r.msgID {
				p.fail("%s %s: msgId %s has more than one set of events: %v and %v", agg.name, key, r.msgID, s.recs[first], r)
			} else if !ok {
				seen[r.msgID] = i
			}
			st = agg.evolve(st, ev)
			states = append(states, st)
		}
		folded[key] = st

		// The exact events the scripts made.
		alts, ok := want[key]
		switch {
		case !ok:
			p.fail("%s %s: events of a key no writer wrote: %s", agg.name, key, describe(s.events))
		case !slices.ContainsFunc(alts, func(w []E) bool { return reflect.DeepEqual(w, s.events) }):
			p.fail("%s %s: events %s, want %s", agg.name, key, describe(s.events), describeAlts(alts))
		}

		// The changelog's latest state is the fold of the events.
		cl, ok := latest[key]
		switch {
		case !agg.exists(st):
			if ok && cl.value != nil {
				p.fail("%s %s: changelog holds %v, but the events fold to nothing", agg.name, key, cl)
			}
		case !ok || cl.value == nil:
			p.fail("%s %s: no state in the changelog (latest %v), the events fold to %+v", agg.name, key, cl, st)
		default:
			got, err := agg.state(cl.value)
			if err != nil {
				p.fail("%s %s: undecodable changelog state %v: %v", agg.name, key, cl, err)
			} else if !reflect.DeepEqual(agg.norm(got), agg.norm(st)) {
				p.fail("%s %s: changelog state %+v, the events fold to %+v", agg.name, key, got, st)
			}
		}

		// Every outcome matches the events of its msgId; every msgId
		// of the events has an outcome.
		for msgID, first := range seen {
			n := 0
			for j := first; j < len(s.recs) && s.recs[j].msgID == msgID; j++ {
				n++
			}
			outs := byMsg[msgID]
			if len(outs) == 0 {
				p.fail("%s %s: events of msgId %s have no outcome in the results topic: %v", agg.name, key, msgID, s.recs[first])
			}
			for _, o := range outs {
				checkOutcome(p, agg, key, o, s.events[first:first+n], states[first+n-1])
			}
		}

		// Every acknowledged write matches its outcome and the events.
		pos := 0
		for _, w := range acked[key] {
			if pos+w.events > len(s.events) {
				p.fail("%s %s: %s was acknowledged (%d), but the events end before it: %s", agg.name, key, w.op, w.status, describe(s.events))
				break
			}
			msgID := s.recs[pos].msgID
			for j := pos; j < pos+w.events; j++ {
				if s.recs[j].msgID != msgID {
					p.fail("%s %s: the events of %s carry several msgIds: %v, %v", agg.name, key, w.op, s.recs[pos], s.recs[j])
				}
			}
			if len(byMsg[msgID]) == 0 {
				p.fail("%s %s: %s was acknowledged (%d) but its msgId %s has no outcome", agg.name, key, w.op, w.status, msgID)
			}
			if w.answer != nil {
				want, err := json.Marshal(answer(states[pos+w.events-1]))
				if err == nil && !sameJSONSubset(w.answer, want) {
					p.fail("%s %s: %s answered %d %s, but its events fold to %s", agg.name, key, w.op, w.status, oneLine(w.answer), want)
				}
			}
			pos += w.events
		}
	}
	for key, alts := range want {
		if _, ok := streams[key]; !ok && !slices.ContainsFunc(alts, func(w []E) bool { return len(w) == 0 }) {
			p.fail("%s %s: no events, want %s", agg.name, key, describeAlts(alts))
		}
	}
	return folded
}

// ackedWrite is a write that got a 2xx, and how many events it makes.
type ackedWrite struct {
	op     string
	status int
	answer []byte // the representation answered; nil for 204
	events int
}

func checkOutcome[S, E any](p *problems, agg aggregate[S, E], key string, o eskafka.Outcome, events []E, after S) {
	if o.Status != eskafka.StatusAccepted {
		p.fail("%s %s: outcome of msgId %s is %s (%+v), but it has events %s", agg.name, key, o.MsgID, o.Status, o.Rejection, describe(events))
		return
	}
	var got []E
	for _, e := range o.Events {
		ev, err := agg.decode(e.Data)
		if err != nil {
			p.fail("%s %s: outcome %s: undecodable %s: %v", agg.name, key, o.MsgID, e.Type, err)
			return
		}
		got = append(got, ev)
	}
	if !reflect.DeepEqual(got, events) {
		p.fail("%s %s: outcome %s lists events %s, the events topic %s", agg.name, key, o.MsgID, describe(got), describe(events))
	}
	if o.Version != agg.version(after) {
		p.fail("%s %s: outcome %s has version %d, the events fold to version %d", agg.name, key, o.MsgID, o.Version, agg.version(after))
	}
	if o.State == nil {
		if agg.exists(after) {
			p.fail("%s %s: outcome %s has no state, the events fold to %+v", agg.name, key, o.MsgID, after)
		}
		return
	}
	st, err := agg.state(o.State)
	if err != nil {
		p.fail("%s %s: outcome %s: undecodable state: %v", agg.name, key, o.MsgID, err)
	} else if !reflect.DeepEqual(agg.norm(st), agg.norm(after)) {
		p.fail("%s %s: outcome %s has state %+v, the events fold to %+v", agg.name, key, o.MsgID, st, after)
	}
}

// problems collects what the checks find.
type problems struct {
	mu   sync.Mutex
	list []string
}

func (p *problems) fail(format string, args ...any) {
	p.mu.Lock()
	p.list = append(p.list, fmt.Sprintf(format, args...))
	p.mu.Unlock()
}

// report fails t with the first problems and their count.
func (p *problems) report(t *testing.T, what string) {
	t.Helper()
	for i, s := range p.list {
		if i == 40 {
			t.Errorf("%s: ... %d problems in all", what, len(p.list))
			return
		}
		t.Errorf("%s: %s", what, s)
	}
}

func describe[E any](evs []E) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = fmt.Sprintf("v%d %T%+v", i+1, e, e)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func describeAlts[E any](alts [][]E) string {
	parts := make([]string, len(alts))
	for i, a := range alts {
		parts[i] = describe(a)
	}
	return strings.Join(parts, " or ")
}

// The JSON representations of the HTTP API, as httpapi renders them.
type authorView struct {
	Code      string `json:"code"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Version   int64  `json:"version"`
}

type bookView struct {
	ID         string    `json:"id"`
	Title      string    `json:"title"`
	AuthorCode *string   `json:"authorCode"`
	Chapters   []chapter `json:"chapters"`
	Version    int64     `json:"version"`
}

type chapter struct {
	ID      int64  `json:"id"`
	Title   string `json:"title"`
	Content string `json:"content"`
}

func authorViewOf(s author.State) any {
	return authorView{Code: s.Code, FirstName: s.FirstName, LastName: s.LastName, Version: s.Version}
}

func bookViewOf(s book.State) any {
	v := bookView{ID: s.ID, Title: s.Title, Chapters: []chapter{}, Version: s.Version}
	if s.AuthorCode != "" {
		code := s.AuthorCode
		v.AuthorCode = &code
	}
	for _, c := range s.Chapters {
		v.Chapters = append(v.Chapters, chapter{ID: c.ID, Title: c.Title, Content: c.Content})
	}
	return v
}

// expectations turns the scripts into the event sequences each key may
// have and the acknowledged writes of each key.
func expectations(authors []*authorRun) (aWant map[string][][]author.Event, aAcked map[string][]ackedWrite, bWant map[string][][]book.Event, bAcked map[string][]ackedWrite) {
	aWant, aAcked = map[string][][]author.Event{}, map[string][]ackedWrite{}
	bWant, bAcked = map[string][][]book.Event{}, map[string][]ackedWrite{}
	for _, a := range authors {
		var evs []author.Event
		alts := [][]author.Event{}
		for _, o := range a.ops {
			var e author.Event
			switch o.op {
			case "create-author":
				e = author.AuthorCreated{Code: a.code, FirstName: a.first, LastName: a.last}
			case "update-author":
				e = author.AuthorUpdated{Code: a.code, FirstName: a.first2, LastName: a.last2}
			case "delete-author":
				e = author.AuthorDeleted{Code: a.code}
			}
			if !o.acked {
				// Never acknowledged (the end of the test cut it
				// off): applied or not.
				alts = append(alts, slices.Clone(evs))
				evs = append(evs, e)
				break
			}
			evs = append(evs, e)
			aAcked[a.code] = append(aAcked[a.code], ackedWrite{op: o.op, status: o.status, answer: answerOf(o), events: 1})
		}
		aWant[a.code] = append(alts, evs)

		deletedAlts := []bool{a.deleted()}
		if len(a.ops) > 2 && !a.ops[2].acked {
			deletedAlts = []bool{false, true}
		}
		for _, b := range a.books {
			var base [][]book.Event
			evs := []book.Event{}
			for _, o := range b.ops {
				var es []book.Event
				switch o.op {
				case "create-book":
					es = []book.Event{book.BookCreated{ID: b.id, Title: b.title0}, book.BookAuthorSet{ID: b.id, AuthorCode: a.code, AuthorPosition: 1}}
				case "rename-book":
					es = []book.Event{book.BookUpdated{ID: b.id, Title: b.title1}}
				}
				if !o.acked {
					base = append(base, slices.Clone(evs))
					evs = append(evs, es...)
					break
				}
				evs = append(evs, es...)
				bAcked[b.id] = append(bAcked[b.id], ackedWrite{op: o.op, status: o.status, answer: answerOf(o), events: len(es)})
			}
			base = append(base, evs)
			var alts [][]book.Event
			for _, evs := range base {
				for _, deleted := range deletedAlts {
					if deleted && len(evs) > 0 {
						// The reaction unassigns the book once.
						alts = append(alts, append(slices.Clone(evs), book.BookAuthorSet{ID: b.id}))
					} else {
						alts = append(alts, evs)
					}
				}
			}
			bWant[b.id] = alts
		}
	}
	return aWant, aAcked, bWant, bAcked
}

func answerOf(o *writeOp) []byte {
	if o.status == http.StatusNoContent {
		return nil
	}
	return o.answer
}

// historyResult is what the checker learned, for the read-back checks.
type historyResult struct {
	authors map[string]author.State
	books   map[string]book.State
	stats   string
}

// checkHistory reads the topics of service and checks them; it returns
// the problems and the folded states.
func checkHistory(t *testing.T, brokers []string, service string, f *formats, authors []*authorRun, fenced []fencedTxn) (*problems, historyResult) {
	p := &problems{}
	at, bt := eskafka.AggregateTopics(service, "authors"), eskafka.AggregateTopics(service, "books")
	bt2 := projection.BooksByAuthorTopics(service)
	read := map[string][]record{}
	for _, topic := range []string{at.Events, at.Changelog, at.Results, bt.Events, bt.Changelog, bt.Results, bt.Commands, bt2.Changelog} {
		recs, err := readTopic(brokers, topic)
		if err != nil {
			p.fail("%v", err)
			return p, historyResult{}
		}
		read[topic] = recs
	}
	aWant, aAcked, bWant, bAcked := expectations(authors)
	authorAgg := aggregate[author.State, author.Event]{
		name: "author", decode: f.authorEvents.Decode, state: f.authorStates.Decode,
		evolve: author.Evolve, version: author.Version, exists: author.State.Exists, norm: func(s author.State) author.State { return s },
	}
	bookAgg := aggregate[book.State, book.Event]{
		name: "book", decode: f.bookEvents.Decode, state: f.bookStates.Decode,
		evolve: book.Evolve, version: book.Version, exists: book.State.Exists,
		norm: func(s book.State) book.State {
			if len(s.Chapters) == 0 {
				s.Chapters = nil
			}
			return s
		},
	}
	aStates := checkAggregate(p, authorAgg, read[at.Events], read[at.Changelog], read[at.Results], f.outcomes.Decode, aWant, aAcked, authorViewOf)
	bStates := checkAggregate(p, bookAgg, read[bt.Events], read[bt.Changelog], read[bt.Results], f.outcomes.Decode, bWant, bAcked, bookViewOf)

	// Every deleted author's books were unassigned exactly once (their
	// exact events are checked above; this names the reaction).
	unassigned := map[string]int{}
	for _, r := range read[bt.Events] {
		if ev, err := f.bookEvents.Decode(r.value); err == nil && ev == (book.BookAuthorSet{ID: r.key}) {
			unassigned[r.key]++
		}
	}
	reactions := map[string]int{}
	for _, r := range read[bt.Commands] {
		if r.typ != "SetBookAuthor" {
			continue
		}
		if c, err := f.bookCommands.Decode(r.value); err == nil {
			if sba, ok := c.(book.SetBookAuthor); ok && sba.OnlyIfAuthor != "" {
				reactions[r.key]++
			}
		}
	}
	deletions, moreReactions := 0, 0
	for _, a := range authors {
		if !a.deleted() {
			continue
		}
		deletions++
		for _, b := range a.books {
			if b.created() && unassigned[b.id] != 1 {
				p.fail("book %s of the deleted author %s was unassigned %d times, want once", b.id, a.code, unassigned[b.id])
			}
			if reactions[b.id] > 1 {
				moreReactions++
			}
		}
	}

	// The books-by-author view equals a rebuild from the events: each
	// author code's names (or its deletion) and its current books.
	views := map[string]record{}
	for _, r := range read[bt2.Changelog] {
		views[r.key] = r
	}
	for _, a := range authors {
		want := viewFromEvents(a.code, aStates, bStates)
		r, ok := views[a.code]
		var got booksbyauthor.View
		if ok && r.value != nil {
			var err error
			if got, err = f.views.Decode(r.value); err != nil {
				p.fail("books by author %s: undecodable view %v: %v", a.code, r, err)
				continue
			}
		}
		if !sameView(got, want) {
			p.fail("books by author %s: the view holds %s, a rebuild from the events %s", a.code, describeView(got), describeView(want))
		}
	}

	// The transactions open when an instance was killed or frozen
	// committed nothing.
	for _, ft := range fenced {
		for _, recs := range read {
			for _, r := range recs {
				if ft.wrote(r) {
					p.fail("%s: the transaction %s had open when it was %s (producer %d, epoch %d) committed %v", ft.instance, ft.txnID, ft.fault, ft.producer, ft.epoch, r)
					break
				}
			}
		}
	}
	stats := fmt.Sprintf("%d author events, %d book events, %d outcomes, %d views; %d deletions, %d books unassigned; %d books with a second (no-op) reaction command",
		len(read[at.Events]), len(read[bt.Events]), len(read[at.Results])+len(read[bt.Results]), len(views), deletions, len(unassigned), moreReactions)
	return p, historyResult{authors: aStates, books: bStates, stats: stats}
}

// viewFromEvents is the books-by-author view of code, rebuilt from the
// folded states: the author's names, or deleted; the books whose author is
// code now.
func viewFromEvents(code string, authors map[string]author.State, books map[string]book.State) booksbyauthor.View {
	var v booksbyauthor.View
	if a, ok := authors[code]; ok {
		if a.Exists() {
			v.Author = &booksbyauthor.Author{Code: code, FirstName: a.FirstName, LastName: a.LastName}
		} else {
			v.Deleted = true
		}
	}
	for id, b := range books {
		if b.Exists() && b.AuthorCode == code {
			if v.Books == nil {
				v.Books = map[string]string{}
			}
			v.Books[id] = b.Title
		}
	}
	return v
}

func sameView(a, b booksbyauthor.View) bool {
	if (a.Author == nil) != (b.Author == nil) || a.Author != nil && *a.Author != *b.Author || a.Deleted != b.Deleted || len(a.Books) != len(b.Books) {
		return false
	}
	for id, title := range a.Books {
		if t, ok := b.Books[id]; !ok || t != title {
			return false
		}
	}
	return true
}

func describeView(v booksbyauthor.View) string {
	a := "no author"
	if v.Author != nil {
		a = fmt.Sprintf("%+v", *v.Author)
	}
	return fmt.Sprintf("{%s, deleted %v, books %v}", a, v.Deleted, v.Books)
}

// checkReadBack reads every author, book and author's books of the
// scripts from each instance: each must show the state the events fold
// to. 503s are retried until deadline.
func checkReadBack(t *testing.T, instances []*instance, authors []*authorRun, h historyResult, deadline time.Time) *problems {
	p := &problems{}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer hc.CloseIdleConnections()
	type check struct {
		path string
		want any // nil: 404
	}
	var checks []check
	for _, a := range authors {
		st, ok := h.authors[a.code]
		if !ok {
			continue
		}
		if st.Exists() {
			checks = append(checks, check{"/authors/" + a.code, authorViewOf(st)})
			v := viewFromEvents(a.code, h.authors, h.books)
			list := []map[string]string{}
			for _, b := range v.List() {
				list = append(list, map[string]string{"id": b.ID, "title": b.Title})
			}
			checks = append(checks, check{"/authors/" + a.code + "/books", map[string]any{
				"author": map[string]string{"code": a.code, "firstName": st.FirstName, "lastName": st.LastName}, "books": list}})
		} else {
			checks = append(checks, check{"/authors/" + a.code, nil}, check{"/authors/" + a.code + "/books", nil})
		}
		for _, b := range a.books {
			if bs, ok := h.books[b.id]; ok && bs.Exists() {
				checks = append(checks, check{"/books/" + b.id, bookViewOf(bs)})
			}
		}
	}
	var wg sync.WaitGroup
	work := make(chan check)
	for range 8 {
		wg.Go(func() {
			for c := range work {
				for _, in := range instances {
					readBack(p, hc, in, c.path, c.want, deadline)
				}
			}
		})
	}
	for _, c := range checks {
		work <- c
	}
	close(work)
	wg.Wait()
	t.Logf("read back %d paths from each of %d instances", len(checks), len(instances))
	return p
}

// readBack GETs path from in until it answers what is wanted (the read
// model may lag a moment) or deadline passes.
func readBack(p *problems, hc *http.Client, in *instance, path string, want any, deadline time.Time) {
	wantJSON, _ := json.Marshal(want)
	var last string
	for {
		resp, err := hc.Get(in.url + path)
		if err == nil {
			var body []byte
			body, err = readAll(resp)
			switch {
			case err != nil:
			case want == nil && resp.StatusCode == http.StatusNotFound:
				return
			case want != nil && resp.StatusCode == http.StatusOK && sameJSONSubset(body, wantJSON):
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, oneLine(body))
		}
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			if want == nil {
				p.fail("GET %s from %s: %s, want 404", path, in.name, last)
			} else {
				p.fail("GET %s from %s: %s, want 200 %s", path, in.name, last, wantJSON)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sameJSONSubset reports whether got holds every member of want with the
// same value (got may have more members).
func sameJSONSubset(got, want []byte) bool {
	var g, w any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil {
		return false
	}
	return subset(g, w)
}

func subset(g, w any) bool {
	switch wv := w.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok {
			return false
		}
		for k, x := range wv {
			if !subset(gv[k], x) {
				return false
			}
		}
		return true
	case []any:
		gv, ok := g.([]any)
		if !ok || len(gv) != len(wv) {
			return false
		}
		for i := range wv {
			if !subset(gv[i], wv[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(g, w)
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 4<<20))
}

// fencedTxn is a transaction an instance had open when it was killed or
// frozen: it must never commit.
type fencedTxn struct {
	instance string
	fault    string
	txnID    string
	producer int64
	epoch    int16
	// from is, per topic and partition, the first offset the open
	// transaction can have written there: its first record, or the end
	// of the partition when it had written nothing there yet. Earlier
	// records of the same producer and epoch belong to transactions it
	// committed before, for transaction version 1 keeps one epoch for a
	// producer's whole session. A partition missing from it is checked
	// from its start.
	from map[string]map[int32]int64
}

// wrote reports whether r may have been written by the open transaction.
func (ft fencedTxn) wrote(r record) bool {
	if r.producer != ft.producer || r.epoch != ft.epoch {
		return false
	}
	from, ok := ft.from[r.topic][r.partition]
	return !ok || r.offset >= from
}

// transactionBounds returns, for each of txns, where it can have started
// writing (fencedTxn.from): from each partition leader's view of the
// producers writing to it (DescribeProducers' current transaction start
// offset) and, where it had not written yet, ends, the partitions' end
// offsets taken before txns were described. A bound that cannot be known is
// left out, so the check stays strict there.
func transactionBounds(c *cluster, txns []kadm.DescribedTransaction, ends map[string]map[int32]int64) (map[string]map[string]map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	set := kadm.TopicsSet{}
	for _, tx := range txns {
		set.Merge(tx.Topics)
	}
	type started struct {
		topic     string
		partition int32
		producer  int64
		epoch     int16
	}
	starts := map[started]int64{}
	unknown := map[started]bool{} // partitions whose leader did not answer
	if len(set) > 0 {
		d, err := c.adm.DescribeProducers(ctx, set)
		if err != nil {
			return nil, fmt.Errorf("describe producers: %w", err)
		}
		d.EachPartition(func(p kadm.DescribedProducersPartition) {
			if p.Err != nil {
				unknown[started{topic: p.Topic, partition: p.Partition}] = true
				return
			}
			for _, pr := range p.ActiveProducers {
				if pr.CurrentTxnStartOffset >= 0 {
					starts[started{p.Topic, p.Partition, pr.ProducerID, pr.ProducerEpoch}] = pr.CurrentTxnStartOffset
				}
			}
		})
	}
	bounds := map[string]map[string]map[int32]int64{}
	for _, tx := range txns {
		from := map[string]map[int32]int64{}
		for topic, parts := range ends {
			from[topic] = maps.Clone(parts)
		}
		for topic, parts := range tx.Topics {
			for part := range parts {
				if from[topic] == nil {
					from[topic] = map[int32]int64{}
				}
				switch o, ok := starts[started{topic, part, tx.ProducerID, tx.ProducerEpoch}]; {
				case ok:
					from[topic][part] = o
				case unknown[started{topic: topic, partition: part}]:
					delete(from[topic], part)
				}
			}
		}
		bounds[tx.TxnID] = from
	}
	return bounds, nil
}

// endOffsets returns the end offset of every partition of every topic.
func endOffsets(c *cluster) (map[string]map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := c.adm.ListEndOffsets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	ends := map[string]map[int32]int64{}
	for topic, parts := range l {
		for part, o := range parts {
			if o.Err != nil || part < 0 {
				continue
			}
			if ends[topic] == nil {
				ends[topic] = map[int32]int64{}
			}
			ends[topic][part] = o.Offset
		}
	}
	return ends, nil
}

// openTransactions returns the transactions of txnIDs that are open now.
func openTransactions(c *cluster, txnIDs []string) ([]kadm.DescribedTransaction, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.adm.DescribeTransactions(ctx, txnIDs...)
	if err != nil {
		return nil, err
	}
	var open []kadm.DescribedTransaction
	for _, tx := range d.Sorted() {
		if tx.Err == nil && tx.State == "Ongoing" {
			open = append(open, tx)
		}
	}
	return open, nil
}
