package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/proctest"
	"github.com/bookscatalog/catalog/kafkatest"
)

// TestReactionExactlyOnceAcrossKill checks that the reaction to a deleted
// author (the books-by-author view sends SetBookAuthor{id, null,
// onlyIfAuthor} for each of its books, in the transaction that consumes
// the deletion) happens exactly once when the service is killed in the
// middle of it.
//
// One instance runs (a child process); in each round an author gets
// reactionBooks books (POST /books with authorCode), GET
// /authors/{code}/books lists them all, the author is deleted, and the
// instance is killed (SIGKILL) at a different point of the reaction: as
// soon as the DELETE answers 204, a few milliseconds later, when the first
// reaction command appears on the books commands topic, and when the first
// unassigning event appears on the books events topic (both read
// uncommitted, so the kill lands inside the transaction that writes them).
// What the kill interrupted is logged. The instance starts again on the
// same data directory, and in the end:
//
//   - every book reads back with authorCode null (GET /books/{id}), and the
//     author and its books are gone (404);
//   - the books events topic (read_committed) holds for each book exactly
//     BookCreated, BookAuthorSet{code} and one BookAuthorSet{""}, with
//     versions 1 to 3, and no (msgId, version) pair twice; the books
//     changelog is the fold of the events;
//   - the books commands topic (read_committed) holds exactly one reaction
//     command per book.
func TestReactionExactlyOnceAcrossKill(t *testing.T) {
	bin := buildCatalog(t)
	brokers := kafkatest.Brokers(t)
	dir := t.TempDir()
	d := &deployment{
		t: t, bin: bin, brokers: strings.Join(brokers, ","), service: kafkatest.Service(t),
		dataDir: filepath.Join(dir, "data"), logDir: dir, partitions: clusterPartitions, logLevel: "info",
	}
	topics := eskafka.AggregateTopics(d.service, "books")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(proctest.FreePort(t)))
	url := "http://" + addr
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}
	t.Cleanup(hc.CloseIdleConnections)
	runs := 0
	start := func() *child {
		runs++
		c := d.launch(fmt.Sprintf("instance-run%d", runs), d.dataDir, addr)
		t.Logf("%s ready in %v", c.name, c.waitReady(t, 90*time.Second).Round(time.Millisecond))
		return c
	}
	proc := start()

	rounds := []*reactionRound{
		{kill: "as soon as the DELETE answers 204"},
		{kill: "5ms after the DELETE answers 204", delay: 5 * time.Millisecond},
		{kill: "when the first reaction command appears (read uncommitted)", watch: topics.Commands, watchType: "SetBookAuthor"},
		{kill: "when the first unassigning event appears (read uncommitted)", watch: topics.Events, watchType: "BookAuthorSet"},
	}
	testStart := time.Now()
	for i, r := range rounds {
		r.code = fmt.Sprintf("reacted-%d", i)
		r.books = createAuthorWithBooks(t, hc, url, r.code, reactionBooks)
		waitAuthorBooksListed(t, hc, url, r.code, r.books, 30*time.Second)
		var seen <-chan time.Time
		if r.watch != "" {
			seen = watchFirst(t, brokers, r.watch, r.watchType, r.bookSet())
		}
		status, body, err := send(hc, http.MethodDelete, url+"/authors/"+r.code, nil, r.code+"-delete")
		if err != nil || status != http.StatusNoContent {
			t.Fatalf("round %d: DELETE /authors/%s: %d %v %s", i, r.code, status, err, oneLine(body))
		}
		deleted := time.Now()
		if seen != nil {
			select {
			case <-seen:
			case <-time.After(15 * time.Second):
				t.Logf("round %d: no %s record of the reaction on %s within 15s of the DELETE; killing now", i, r.watchType, r.watch)
			}
		}
		time.Sleep(r.delay)
		proc.kill(t)
		t.Logf("round %d: %d books, killed %s: %v after the 204; then %s", i, len(r.books), r.kill,
			time.Since(deleted).Round(100*time.Microsecond), reactionProgress(brokers, topics, r))
		proc = start()
	}

	// Every book ends without author.
	deadline := time.Now().Add(60 * time.Second)
	for _, r := range rounds {
		errs := &errorLimiter{t: t, what: "unassigned books of " + r.code}
		each(r.books, 8, func(b *reactionBook) {
			want := bookView{ID: b.id, Title: b.title, Chapters: []json.RawMessage{}, Version: 3}
			var last string
			for {
				status, body, err := getRetry(hc, url+"/books/"+b.id, deadline)
				if err != nil {
					errs.Errorf("%v", err)
					return
				}
				var got bookView
				if status == http.StatusOK && json.Unmarshal(body, &got) == nil && got.equal(want) {
					return
				}
				last = fmt.Sprintf("%d %s", status, oneLine(body))
				if time.Now().After(deadline) {
					errs.Errorf("book %s of the deleted author %s: GET answered %s, want 200 %v", b.id, r.code, last, want)
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
		errs.done()
		for _, path := range []string{"/authors/" + r.code, "/authors/" + r.code + "/books"} {
			if status, body, err := getRetry(hc, url+path, deadline); err != nil || status != http.StatusNotFound {
				t.Errorf("GET %s after the deletion: %d %v %s, want 404", path, status, err, oneLine(body))
			}
		}
	}
	t.Logf("every book of the %d deleted authors reads back without author, %v after the first round began", len(rounds), time.Since(testStart).Round(time.Millisecond))
	waitCaughtUp(t, brokers, d.service+".books.processor", topics.Commands, 60*time.Second)
	checkReactionTopics(t, brokers, d.service, rounds)
}

// reactionBooks is the number of books of each deleted author.
const reactionBooks = 60

type reactionRound struct {
	kill      string        // when the instance is killed
	delay     time.Duration // after the 204 (and the watched record)
	watch     string        // topic to watch for the first reaction record
	watchType string        // its type header
	code      string
	books     []*reactionBook
}

type reactionBook struct{ id, title string }

func (r *reactionRound) bookSet() map[string]bool {
	m := map[string]bool{}
	for _, b := range r.books {
		m[b.id] = true
	}
	return m
}

// send sends a JSON body (nil: none) with an Idempotency-Key and returns
// the answer.
func send(hc *http.Client, method, url string, body any, idemKey string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Idempotency-Key", idemKey)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// sendUntilAcked sends until a 2xx answers (5xx and transport errors are
// retried with the same Idempotency-Key, for up to 60s); a 4xx fails the
// test.
func sendUntilAcked(t *testing.T, hc *http.Client, method, url string, body any, idemKey string) []byte {
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, b, err := send(hc, method, url, body, idemKey)
		switch {
		case err == nil && status >= 200 && status < 300:
			return b
		case err == nil && status < 500:
			t.Errorf("%s %s: %d %s", method, url, status, oneLine(b))
			return nil
		case time.Now().After(deadline):
			t.Errorf("%s %s: not acked within 60s: %d %v %s", method, url, status, err, oneLine(b))
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// createAuthorWithBooks creates author code and n books of it.
func createAuthorWithBooks(t *testing.T, hc *http.Client, url, code string, n int) []*reactionBook {
	t.Helper()
	sendUntilAcked(t, hc, http.MethodPost, url+"/authors", map[string]string{"code": code, "firstName": "Deleted", "lastName": "Soon " + code}, code+"-create")
	books := make([]*reactionBook, n)
	for i := range books {
		books[i] = &reactionBook{id: ids.New(), title: fmt.Sprintf("Book %02d of %s", i, code)}
	}
	each(books, 8, func(b *reactionBook) {
		sendUntilAcked(t, hc, http.MethodPost, url+"/books", map[string]string{"id": b.id, "title": b.title, "authorCode": code}, b.id+"-create")
	})
	if t.Failed() {
		t.FailNow()
	}
	return books
}

// waitAuthorBooksListed waits until GET /authors/{code}/books lists every
// one of books.
func waitAuthorBooksListed(t *testing.T, hc *http.Client, url, code string, books []*reactionBook, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		status, body, err := getRetry(hc, url+"/authors/"+code+"/books", deadline)
		if err != nil {
			t.Fatal(err)
		}
		var got authorBooksView
		if status == http.StatusOK && json.Unmarshal(body, &got) == nil && len(got.Books) == len(books) {
			listed := map[string]string{}
			for _, b := range got.Books {
				listed[b.ID] = b.Title
			}
			ok := true
			for _, b := range books {
				ok = ok && listed[b.id] == b.title
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /authors/%s/books did not list its %d books within %v: %d %s", code, len(books), timeout, status, oneLine(body))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watchFirst returns a channel that receives the time when the first
// record of topic with a key in keys and type header typ appears, read
// uncommitted from the topic's end as of the call (so inside the
// transaction that writes it).
func watchFirst(t *testing.T, brokers []string, topic, typ string, keys map[string]bool) <-chan time.Time {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	ends, err := kadm.NewClient(adm).ListEndOffsets(lctx, topic)
	lcancel()
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		cancel()
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) { offsets[topic][o.Partition] = kgo.NewOffset().At(o.Offset) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	seen := make(chan time.Time, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cl.Close()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			found := false
			fs.EachRecord(func(r *kgo.Record) {
				if found || !keys[string(r.Key)] {
					return
				}
				for _, h := range r.Headers {
					if h.Key == eskafka.HeaderType && string(h.Value) == typ {
						found = true
					}
				}
			})
			if found {
				seen <- time.Now()
				return
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return seen
}

// reactionProgress tells how far the reaction of r got before the kill:
// its commands and unassigning events written (read uncommitted, open and
// aborted transactions included) and committed (read_committed, up to the
// last stable offset).
func reactionProgress(brokers []string, topics eskafka.Topics, r *reactionRound) string {
	keys := r.bookSet()
	count := func(topic, typ string, committed bool) string {
		recs, err := readTopicAs(brokers, topic, committed)
		if err != nil {
			return "?(" + err.Error() + ")"
		}
		n := 0
		for _, rec := range recs {
			if keys[rec.key] && rec.typ == typ {
				n++
			}
		}
		if typ == "BookAuthorSet" {
			n -= len(keys) // each book got its author when created
		}
		return strconv.Itoa(n)
	}
	return fmt.Sprintf("reaction commands %s written, %s committed; unassigning events %s written, %s committed",
		count(topics.Commands, "SetBookAuthor", false), count(topics.Commands, "SetBookAuthor", true),
		count(topics.Events, "BookAuthorSet", false), count(topics.Events, "BookAuthorSet", true))
}

// checkReactionTopics checks the books events, changelog and commands
// topics after the rounds (retried a few times, as in checkTopics).
func checkReactionTopics(t *testing.T, brokers []string, service string, rounds []*reactionRound) {
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
		fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
		commands, err := readTopic(brokers, topics.Commands)
		if err != nil {
			fail("%v", err)
		}
		reactions := map[string][]string{} // book -> the reaction commands for it
		for _, r := range commands {
			if r.typ != "SetBookAuthor" {
				continue
			}
			cmd, err := f.commands.Decode(r.value)
			if err != nil {
				fail("undecodable command %v: %v", r, err)
				continue
			}
			if c, ok := cmd.(book.SetBookAuthor); ok && c.OnlyIfAuthor != "" {
				reactions[r.key] = append(reactions[r.key], fmt.Sprintf("%+v (msgId %s, %d@%d)", c, r.msgID, r.partition, r.offset))
			}
		}
		ours := map[string]bool{}
		for _, r := range rounds {
			for _, b := range r.books {
				ours[b.id] = true
				want := []versionedBookEvent{
					{book.BookCreated{ID: b.id, Title: b.title}, 1},
					{book.BookAuthorSet{ID: b.id, AuthorCode: r.code, AuthorPosition: 1}, 2},
					{book.BookAuthorSet{ID: b.id}, 3},
				}
				got := byKey[b.id]
				unassigned := 0
				for _, e := range got {
					if e.event == (book.BookAuthorSet{ID: b.id}) {
						unassigned++
					}
				}
				if unassigned != 1 || !reflect.DeepEqual(got, want) {
					fail("book %s of %s (killed %s): %d unassigning events; events %s, want %s",
						b.id, r.code, r.kill, unassigned, describeBookEvents(got), describeBookEvents(want))
				}
				if n := len(reactions[b.id]); n != 1 {
					fail("book %s of %s (killed %s): %d reaction commands committed, want 1: %v", b.id, r.code, r.kill, n, reactions[b.id])
				}
			}
		}
		for k, evs := range byKey {
			if !ours[k] {
				fail("events of book %q that no client wrote: %s", k, describeBookEvents(evs))
			}
		}
		if len(problems) == 0 {
			t.Logf("books topics: every book unassigned exactly once by exactly one reaction command: %s, %d reaction commands", stats, len(reactions))
			return
		}
		t.Logf("books topic check, attempt %d: %d problems (first: %s)", attempt, len(problems), problems[0])
		time.Sleep(time.Second)
	}
	reportProblems(t, problems)
}
