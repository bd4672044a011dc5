package crashtest

// The books workload and the reads and topic checks of books, for the
// cluster tests. Each book is created with an author that exists for good
// (POST /books with its id and authorCode) and renamed once
// (PUT /books/{id}); both writes carry an Idempotency-Key and are sent
// again with it until acked (a retry returns the first outcome and applies
// nothing). So every book ends in a known state with exactly three events:
// BookCreated, BookAuthorSet and BookUpdated.

import (
	"bytes"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/internal/catalogavro"
	"github.com/bookscatalog/catalog/internal/domain/book"
)

// bookRun is one book of the workload and what became of its two writes.
type bookRun struct {
	id, author     string
	title0, title1 string
	ops            [2]bookOp // create, rename
}

type bookOp struct {
	outcome  outcome
	attempts int
	detail   string // the last answer that was not a success
}

func (b *bookRun) idemKey(i int) string { return fmt.Sprintf("%s-op%d", b.id, i) }

// view is the representation the service must show once both writes are
// applied.
func (b *bookRun) view() bookView {
	code := b.author
	return bookView{ID: b.id, Title: b.title1, AuthorCode: &code, Chapters: []json.RawMessage{}, Version: 3}
}

// events are the events the book must have, with their versions.
func (b *bookRun) events() []versionedBookEvent {
	return []versionedBookEvent{
		{book.BookCreated{ID: b.id, Title: b.title0}, 1},
		{book.BookAuthorSet{ID: b.id, AuthorCode: b.author, AuthorPosition: 1}, 2},
		{book.BookUpdated{ID: b.id, Title: b.title1}, 3},
	}
}

func (b *bookRun) String() string {
	return fmt.Sprintf("book %s (author %s): create %s after %d attempts (%s), rename %s after %d attempts (%s)",
		b.id, b.author, b.ops[0].outcome, b.ops[0].attempts, b.ops[0].detail, b.ops[1].outcome, b.ops[1].attempts, b.ops[1].detail)
}

// bookView is the JSON representation of a book, as httpapi
// renders it.
type bookView struct {
	ID         string            `json:"id"`
	Title      string            `json:"title"`
	AuthorCode *string           `json:"authorCode"`
	Chapters   []json.RawMessage `json:"chapters"`
	Version    int64             `json:"version"`
}

func (v bookView) equal(w bookView) bool {
	return v.ID == w.ID && v.Title == w.Title && v.Version == w.Version &&
		(v.AuthorCode == nil) == (w.AuthorCode == nil) && (v.AuthorCode == nil || *v.AuthorCode == *w.AuthorCode) &&
		v.Chapters != nil && w.Chapters != nil && len(v.Chapters) == len(w.Chapters)
}

func (v bookView) String() string {
	a := "null"
	if v.AuthorCode != nil {
		a = strconv.Quote(*v.AuthorCode)
	}
	return fmt.Sprintf("{id %s, title %q, authorCode %s, %d chapters, version %d}", v.ID, v.Title, a, len(v.Chapters), v.Version)
}

// bookLoad runs book writers against one URL.
type bookLoad struct {
	t       *testing.T
	hc      *http.Client
	phase   string
	authors []string // codes of authors that exist for good

	mu      sync.Mutex
	books   []*bookRun
	statusN map[string]int    // answers that were not a success, by status
	sample  map[string]string // one such answer per status

	acked   atomic.Int64
	stopped atomic.Bool
}

func newBookLoad(t *testing.T, phase string, authors []string) *bookLoad {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &bookLoad{t: t, hc: &http.Client{Timeout: 20 * time.Second, Transport: tr}, phase: phase, authors: authors,
		statusN: map[string]int{}, sample: map[string]string{}}
}

// bookClients is the number of concurrent book writers.
const bookClients = 3

// client writes books one after the other until stopped, each write
// retried with its Idempotency-Key until acked (or stopped).
func (l *bookLoad) client(url string, c int) {
	for j := 0; !l.stopped.Load() && j < 100000; j++ {
		b := &bookRun{
			id: ids.New(), author: l.authors[(c+j*bookClients)%len(l.authors)],
			title0: fmt.Sprintf("%s book c%d-%d", l.phase, c, j), title1: fmt.Sprintf("%s book c%d-%d, renamed", l.phase, c, j),
		}
		l.mu.Lock()
		l.books = append(l.books, b)
		l.mu.Unlock()
		for i := range b.ops {
			if !l.execUntilAcked(url, b, i, l.stopped.Load) {
				break
			}
		}
	}
}

// execUntilAcked sends write i of b until it is acked, a 4xx answers (a
// test failure: nothing here can be rejected), or giveUp returns true
// after a failed attempt. It reports whether the write was acked.
func (l *bookLoad) execUntilAcked(url string, b *bookRun, i int, giveUp func() bool) bool {
	o := &b.ops[i]
	for {
		o.attempts++
		status, body, err := l.send(url, b, i)
		switch {
		case err == nil && status >= 200 && status < 300:
			o.outcome = acked
			l.acked.Add(1)
			l.checkAnswer(b, i, status, body)
			return true
		case err == nil && status < 500:
			o.outcome, o.detail = unknown, fmt.Sprintf("%d %s", status, oneLine(body))
			l.count(fmt.Sprint(status), o.detail)
			l.t.Errorf("%s: write %d rejected: %d %s", b, i, status, oneLine(body))
			return false
		case err != nil:
			o.outcome, o.detail = unknown, err.Error()
			l.count("transport error", o.detail)
		default:
			o.outcome, o.detail = unknown, fmt.Sprintf("%d %s", status, oneLine(body))
			l.count(fmt.Sprint(status), o.detail)
		}
		if giveUp() {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *bookLoad) count(what, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statusN[what]++
	if _, ok := l.sample[what]; !ok {
		l.sample[what] = detail
	}
}

func (l *bookLoad) send(url string, b *bookRun, i int) (int, []byte, error) {
	var req *http.Request
	var err error
	if i == 0 {
		body, _ := json.Marshal(map[string]string{"id": b.id, "title": b.title0, "authorCode": b.author})
		req, err = http.NewRequest(http.MethodPost, url+"/books", bytes.NewReader(body))
	} else {
		body, _ := json.Marshal(map[string]string{"title": b.title1})
		req, err = http.NewRequest(http.MethodPut, url+"/books/"+b.id, bytes.NewReader(body))
	}
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", b.idemKey(i))
	resp, err := l.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer (%d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, rb, nil
}

// checkAnswer checks the answer to acked write i of b.
func (l *bookLoad) checkAnswer(b *bookRun, i, status int, body []byte) {
	want := b.view()
	wantStatus := http.StatusOK
	if i == 0 {
		want.Title, want.Version, wantStatus = b.title0, 2, http.StatusCreated
	}
	var got bookView
	if err := json.Unmarshal(body, &got); err != nil {
		l.t.Errorf("%s: write %d answered %d with an undecodable book: %v: %s", b, i, status, err, oneLine(body))
		return
	}
	if status != wantStatus || !got.equal(want) {
		l.t.Errorf("%s: write %d answered %d %v, want %d %v: a write was lost or applied twice", b, i, status, got, wantStatus, want)
	}
}

// finish sends again, until acked, every write that was not acked when the
// clients stopped, and the writes after it; it returns how many books it
// had to finish.
func (l *bookLoad) finish(url string, timeout time.Duration) int {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	n := 0
	for _, b := range l.books {
		i := slices.IndexFunc(b.ops[:], func(o bookOp) bool { return o.outcome != acked })
		if i < 0 {
			continue
		}
		n++
		for ; i < len(b.ops); i++ {
			if !l.execUntilAcked(url, b, i, func() bool { return time.Now().After(deadline) }) {
				l.t.Errorf("%s: not acked within %v of the end of the load", b, timeout)
				break
			}
		}
	}
	return n
}

func (l *bookLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	retried := 0
	for _, b := range l.books {
		if b.ops[0].attempts > 1 || b.ops[1].attempts > 1 {
			retried++
		}
	}
	return fmt.Sprintf("%d books, %d writes acked, %d books needed a retry; not acked at first: %v", len(l.books), l.acked.Load(), retried, l.statusN)
}

// notes returns a line per kind of answer that was not a success, with a
// sample.
func (l *bookLoad) notes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(l.statusN)) {
		out = append(out, fmt.Sprintf("%s x%d, e.g. %s", k, l.statusN[k], l.sample[k]))
	}
	return out
}

// getRetry GETs url until it answers something other than 503 or a
// transport error, or deadline passes.
func getRetry(hc *http.Client, url string, deadline time.Time) (int, []byte, error) {
	last := "no attempt"
	for {
		resp, err := hc.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			resp.Body.Close()
			switch {
			case rerr != nil:
				last = rerr.Error()
			case resp.StatusCode != http.StatusServiceUnavailable:
				return resp.StatusCode, b, nil
			default:
				last = fmt.Sprintf("%d %s", resp.StatusCode, oneLine(b))
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return 0, nil, fmt.Errorf("GET %s: no answer but 503s or errors until the deadline; last: %s", url, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// each calls fn for every item, from n goroutines.
func each[T any](items []T, n int, fn func(T)) {
	ch := make(chan T)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for it := range ch {
				fn(it)
			}
		})
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
}

// errorLimiter reports at most 20 errors of one check, then a count.
type errorLimiter struct {
	t    *testing.T
	what string
	mu   sync.Mutex
	n    int
}

func (e *errorLimiter) Errorf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if e.n <= 20 {
		e.t.Errorf(format, args...)
	}
}

func (e *errorLimiter) done() {
	if e.n > 20 {
		e.t.Errorf("... %d %s problems in all", e.n, e.what)
	}
}

// checkBooksAt reads every book from url: each must show its acked writes.
func checkBooksAt(t *testing.T, hc *http.Client, url string, books []*bookRun, deadline time.Time) {
	t.Helper()
	errs := &errorLimiter{t: t, what: "GET /books/{id} at " + url}
	each(books, 8, func(b *bookRun) {
		status, body, err := getRetry(hc, url+"/books/"+b.id, deadline)
		if err != nil {
			errs.Errorf("%v\n%v", err, b)
			return
		}
		var got bookView
		if status != http.StatusOK || json.Unmarshal(body, &got) != nil || !got.equal(b.view()) {
			errs.Errorf("GET %s/books/%s answered %d %s, want 200 %v\n%v", url, b.id, status, oneLine(body), b.view(), b)
		}
	})
	errs.done()
}

// authorBooksView is the answer of GET /authors/{code}/books.
type authorBooksView struct {
	Author struct {
		Code      string `json:"code"`
		FirstName string `json:"firstName"`
		LastName  string `json:"lastName"`
	} `json:"author"`
	Books []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	} `json:"books"`
}

// checkAuthorBooksAt reads GET /authors/{code}/books from url for every
// author that books were given to: it must show the author's names and
// exactly its books, by title. 503s are read again until deadline; the
// read model follows the events, so a wrong answer is read again until
// settled (which is before deadline).
func checkAuthorBooksAt(t *testing.T, hc *http.Client, url string, authors map[string]authorView, books []*bookRun, deadline, settled time.Time) {
	t.Helper()
	byAuthor := map[string][]*bookRun{}
	for _, b := range books {
		byAuthor[b.author] = append(byAuthor[b.author], b)
	}
	codes := slices.Sorted(maps.Keys(byAuthor))
	errs := &errorLimiter{t: t, what: "GET /authors/{code}/books at " + url}
	each(codes, 4, func(code string) {
		want := authorBooksView{}
		a := authors[code]
		want.Author.Code, want.Author.FirstName, want.Author.LastName = a.Code, a.FirstName, a.LastName
		bs := slices.Clone(byAuthor[code])
		slices.SortFunc(bs, func(x, y *bookRun) int {
			if c := strings.Compare(x.title1, y.title1); c != 0 {
				return c
			}
			return strings.Compare(x.id, y.id)
		})
		for _, b := range bs {
			want.Books = append(want.Books, struct {
				ID    string `json:"id"`
				Title string `json:"title"`
			}{b.id, b.title1})
		}
		var last string
		for {
			status, body, err := getRetry(hc, url+"/authors/"+code+"/books", deadline)
			if err != nil {
				errs.Errorf("%v", err)
				return
			}
			var got authorBooksView
			derr := json.Unmarshal(body, &got)
			if status == http.StatusOK && derr == nil && reflect.DeepEqual(got, want) {
				return
			}
			last = fmt.Sprintf("%d %s", status, oneLine(body))
			if status == http.StatusOK && derr == nil {
				wanted := map[string]bool{}
				for _, b := range want.Books {
					wanted[b.ID+"\x00"+b.Title] = true
				}
				found := 0
				for _, b := range got.Books {
					if wanted[b.ID+"\x00"+b.Title] {
						found++
					}
				}
				last = fmt.Sprintf("200 with the author %+v and %d books, %d of them expected (missing %d)",
					got.Author, len(got.Books), found, len(want.Books)-found)
			}
			if time.Now().After(deadline) || time.Now().After(settled) {
				errs.Errorf("GET %s/authors/%s/books answered %s; want the author %+v and its %d books", url, code, last, want.Author, len(want.Books))
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	errs.done()
}

// checkAuthorListAt reads GET /authors from url page by page (limit
// pageSize, following "next"): the pages must hold exactly want, in key
// order, each once. A 503 (partitions moving) starts the listing again,
// until deadline; so does a wrong answer, until settled.
func checkAuthorListAt(t *testing.T, hc *http.Client, url string, want map[string]authorView, pageSize int, deadline, settled time.Time) (pages int) {
	t.Helper()
	for {
		got, pages, err := listAuthors(hc, url, pageSize)
		if err == nil {
			var problems []string
			for i, v := range got {
				if i > 0 && got[i-1].Code >= v.Code {
					problems = append(problems, fmt.Sprintf("item %d (%s) after %s: not in strict key order", i, v.Code, got[i-1].Code))
				}
				if w, ok := want[v.Code]; !ok {
					problems = append(problems, fmt.Sprintf("%+v listed, but it should not exist", v))
				} else if w != v {
					problems = append(problems, fmt.Sprintf("%+v listed, want %+v", v, w))
				}
			}
			listed := map[string]bool{}
			for _, v := range got {
				listed[v.Code] = true
			}
			for _, code := range slices.Sorted(maps.Keys(want)) {
				if !listed[code] {
					problems = append(problems, fmt.Sprintf("%+v missing", want[code]))
				}
			}
			if len(problems) == 0 {
				return pages
			}
			if time.Now().After(deadline) || time.Now().After(settled) {
				t.Errorf("GET %s/authors (pages of %d, %d pages, %d items; %d expected): %d problems, first: %s",
					url, pageSize, pages, len(got), len(want), len(problems), strings.Join(problems[:min(len(problems), 10)], "; "))
				return pages
			}
		} else if time.Now().After(deadline) {
			t.Errorf("GET %s/authors: %v", url, err)
			return pages
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// listAuthors reads every page of GET /authors.
func listAuthors(hc *http.Client, url string, pageSize int) ([]authorView, int, error) {
	var all []authorView
	after := ""
	for pages := 1; pages <= 10000; pages++ {
		u := fmt.Sprintf("%s/authors?limit=%d", url, pageSize)
		if after != "" {
			u += "&after=" + after
		}
		resp, err := hc.Get(u)
		if err != nil {
			return nil, pages, err
		}
		var page struct {
			Items []authorView `json:"items"`
			Next  string       `json:"next"`
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, pages, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, pages, fmt.Errorf("page %d: %d %s", pages, resp.StatusCode, oneLine(b))
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, pages, fmt.Errorf("page %d: %v: %s", pages, err, oneLine(b))
		}
		if len(page.Items) > pageSize {
			return nil, pages, fmt.Errorf("page %d: %d items, more than the limit %d", pages, len(page.Items), pageSize)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all, pages, nil
		}
		after = page.Next
	}
	return nil, 0, fmt.Errorf("more than 10000 pages")
}

// bookFormat decodes the values of the books topics (see recordFormat).
type bookFormat struct {
	events   *avro.Union[book.Event]
	states   *avro.Value[book.State]
	commands *avro.Union[book.Command]
}

func newBookFormat(t *testing.T, brokers []string, service string) (*bookFormat, error) {
	reg, err := openRegistry(t, brokers, service)
	if err != nil {
		return nil, err
	}
	c, err := catalogavro.New(reg)
	if err != nil {
		return nil, err
	}
	return &bookFormat{events: c.BookEvents, states: c.BookState, commands: c.BookCommands}, nil
}

type versionedBookEvent struct {
	event   book.Event
	version int64
}

func describeBookEvents(evs []versionedBookEvent) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = fmt.Sprintf("v%d %T%+v", e.version, e.event, e.event)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// bookTopics reads the committed books events and changelog once. It
// returns the events per key, the latest changelog state per key (ok false:
// a tombstone), the problems that need no model (an event without headers,
// a (msgId, version) pair twice, an undecodable record, a changelog state
// that is not the fold of its key's events), and a line of counts.
func bookTopics(brokers []string, topics eskafka.Topics, f *bookFormat) (byKey map[string][]versionedBookEvent, problems []string, stats string) {
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	events, err := readTopic(brokers, topics.Events)
	if err != nil {
		return nil, []string{err.Error()}, ""
	}
	changelog, err := readTopic(brokers, topics.Changelog)
	if err != nil {
		return nil, []string{err.Error()}, ""
	}
	seen := map[[2]string]topicRecord{}
	byKey = map[string][]versionedBookEvent{}
	for _, r := range events {
		id := [2]string{r.msgID, r.version}
		if r.msgID == "" || r.version == "" {
			fail("book event without msgId or version header: %v", r)
		} else if first, dup := seen[id]; dup {
			fail("duplicate book event (msgId %s, version %s): %v and %v", r.msgID, r.version, first, r)
		} else {
			seen[id] = r
		}
		ev, err := f.events.Decode(r.value)
		if err != nil {
			fail("undecodable book event %v: %v", r, err)
			continue
		}
		v, err := strconv.ParseInt(r.version, 10, 64)
		if err != nil {
			fail("book event %v: version header is not an integer", r)
		}
		byKey[r.key] = append(byKey[r.key], versionedBookEvent{ev, v})
	}
	latest := map[string]topicRecord{}
	for _, r := range changelog {
		latest[r.key] = r
	}
	for k, evs := range byKey {
		var folded book.State
		for _, e := range evs {
			folded = book.Evolve(folded, e.event)
		}
		cl, ok := latest[k]
		switch {
		case !folded.Exists():
			if ok && cl.value != nil {
				fail("books changelog of %s: latest record %v, want a tombstone or none", k, cl)
			}
		case !ok || cl.value == nil:
			fail("books changelog of %s: no state (latest %v), want %+v folded from its events", k, cl, folded)
		default:
			st, err := f.states.Decode(cl.value)
			if err != nil {
				fail("books changelog of %s: undecodable state %v: %v", k, cl, err)
			} else if !sameBook(st, folded) {
				fail("books changelog of %s: latest state %+v, events fold to %+v", k, st, folded)
			}
		}
	}
	for k, r := range latest {
		if _, ok := byKey[k]; !ok {
			fail("books changelog record of key %q that has no events: %v", k, r)
		}
	}
	return byKey, problems, fmt.Sprintf("%d book events, %d books changelog records, %d books", len(events), len(changelog), len(byKey))
}

// sameBook compares book states, a nil and an empty chapter list alike.
func sameBook(a, b book.State) bool {
	if len(a.Chapters) == 0 && len(b.Chapters) == 0 {
		a.Chapters, b.Chapters = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// checkBookTopics checks the books events and changelog topics against
// books: exactly their three events each, in order, no other key, no
// (msgId, version) twice, and a changelog that folds from the events.
// Reads are retried a few times, as in checkTopics.
func checkBookTopics(t *testing.T, books []*bookRun, brokers []string, service string) {
	t.Helper()
	f, err := newBookFormat(t, brokers, service)
	if err != nil {
		t.Fatal(err)
	}
	topics := eskafka.AggregateTopics(service, "books")
	var problems []string
	for attempt := 1; attempt <= 3; attempt++ {
		byKey, ps, stats := bookTopics(brokers, topics, f)
		problems = ps
		ours := map[string]bool{}
		for _, b := range books {
			ours[b.id] = true
			if got := byKey[b.id]; !reflect.DeepEqual(got, b.events()) {
				problems = append(problems, fmt.Sprintf("events of book %s: got %s, want %s\n%v", b.id, describeBookEvents(got), describeBookEvents(b.events()), b))
			}
		}
		for k, evs := range byKey {
			if !ours[k] {
				problems = append(problems, fmt.Sprintf("events of book %q that no client wrote: %s", k, describeBookEvents(evs)))
			}
		}
		if len(problems) == 0 {
			t.Logf("books topics agree with the acked writes and with each other: %s", stats)
			return
		}
		t.Logf("books topic check, attempt %d: %d problems (first: %s)", attempt, len(problems), problems[0])
		time.Sleep(time.Second)
	}
	reportProblems(t, problems)
}
