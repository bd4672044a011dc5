package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// newServer serves the application's handlers the way the service does:
// in a ServeMux, behind a middleware that wraps the ResponseWriter without
// an Unwrap method (as httpapi's request logging does).
func newServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for pattern, h := range Handlers(cfg) {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&recorder{ResponseWriter: w}, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestIndex(t *testing.T) {
	srv := newServer(t, Config{})
	resp, body := get(t, srv.URL+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q, want text/html; charset=utf-8", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for _, want := range []string{`<html lang="en">`, `<main id="main"`, `<nav aria-label="Main">`, `<aside id="live"`, `data-stream="/events/stream"`, `name="viewport"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	// The asset URLs carry their content hash.
	for _, name := range []string{"app.js", "app.css"} {
		re := regexp.MustCompile(`/ui/` + regexp.QuoteMeta(name) + `\?v=([0-9a-f]{12})"`)
		m := re.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("the page does not link %s with a version", name)
		}
		resp, _ := get(t, srv.URL+"/ui/"+name+"?v="+m[1])
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("%s?v=<its hash>: Cache-Control = %q, want immutable", name, cc)
		}
	}
	// Revalidation.
	resp, _ = get(t, srv.URL+"/", "If-None-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET / with If-None-Match = %d, want 304", resp.StatusCode)
	}
	// Only / itself is the page.
	if resp, _ := get(t, srv.URL+"/nothing"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing = %d, want 404", resp.StatusCode)
	}
}

func TestAssetsEmbedded(t *testing.T) {
	srv := newServer(t, Config{})
	want := map[string]string{
		"app.js":  "text/javascript; charset=utf-8",
		"app.css": "text/css; charset=utf-8",
	}
	for name, ct := range want {
		embedded, err := static.ReadFile("static/" + name)
		if err != nil {
			t.Fatalf("%s is not embedded: %v", name, err)
		}
		resp, body := get(t, srv.URL+"/ui/"+name)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /ui/%s = %d", name, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Type"); got != ct {
			t.Errorf("/ui/%s: Content-Type = %q, want %q", name, got, ct)
		}
		if body != string(embedded) {
			t.Errorf("/ui/%s is not the embedded file", name)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("/ui/%s without a version: Cache-Control = %q, want no-cache", name, cc)
		}
	}
	resp, body := get(t, srv.URL+"/ui/nope.js")
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /ui/nope.js = %d %s %s, want a 404 problem", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := get(t, srv.URL+"/ui/index.html"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/index.html = %d, want 404 (the page is served at /)", resp.StatusCode)
	}
}

// TestNoExternalURLs keeps the page self-contained: it must work without
// network access and leak nothing to third parties.
func TestNoExternalURLs(t *testing.T) {
	n := 0
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		for _, scheme := range []string{"http://", "https://", "//cdn", "@import"} {
			if i := strings.Index(string(b), scheme); i >= 0 {
				t.Errorf("%s refers to %q: %.60s", p, scheme, string(b[i:]))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Errorf("%d embedded files, want index.html, app.js and app.css at least", n)
	}
}

// fakeSource is a Source the test drives: each Run is handed over on runs.
type fakeSource struct{ runs chan *fakeRun }

type fakeRun struct {
	ctx context.Context
	// ready reports the run positioned, with no recent past; readyWith
	// hands one over.
	ready     func()
	readyWith func(recent []Event)
	emit      func(Event)
}

func newFakeSource() *fakeSource { return &fakeSource{runs: make(chan *fakeRun, 10)} }

func (f *fakeSource) Run(ctx context.Context, ready func([]Event), emit func(Event)) error {
	f.runs <- &fakeRun{ctx: ctx, ready: func() { ready(nil) }, readyWith: ready, emit: emit}
	<-ctx.Done()
	return nil
}

func (f *fakeSource) next(t *testing.T) *fakeRun {
	t.Helper()
	select {
	case r := <-f.runs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the source was not started")
		return nil
	}
}

// sseReader reads server-sent events.
type sseReader struct {
	t  *testing.T
	r  *bufio.Reader
	cl io.Closer
}

type sse struct {
	comment, name, data string
}

func openStream(t *testing.T, url string) *sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
	return &sseReader{t: t, r: bufio.NewReader(resp.Body), cl: resp.Body}
}

// next returns the next event or comment, failing after 5 s: the server
// must have flushed it.
func (s *sseReader) next() sse {
	s.t.Helper()
	type result struct {
		e   sse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var e sse
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				ch <- result{e, err}
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if e != (sse{}) {
					ch <- result{e, nil}
					return
				}
			case strings.HasPrefix(line, ":"):
				e.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "event: "):
				e.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				e.data = line[len("data: "):]
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			s.t.Fatalf("read the stream: %v", r.err)
		}
		return r.e
	case <-time.After(5 * time.Second):
		s.t.Fatal("no event within 5s: not flushed?")
		return sse{}
	}
}

func (s *sseReader) nextEvent() sse {
	s.t.Helper()
	for {
		if e := s.next(); e.name != "" {
			return e
		}
	}
}

func TestStreamSendsCommittedEvents(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{})
	t.Cleanup(feed.Close)
	srv := newServer(t, Config{Feed: feed, KeepAlive: 50 * time.Millisecond})

	s := openStream(t, srv.URL+StreamPath)
	if e := s.nextEvent(); e.name != "status" || !strings.Contains(e.data, `"live":false`) {
		t.Fatalf("first event = %+v, want status not live", e)
	}
	run := src.next(t)
	run.ready()
	if e := s.nextEvent(); e.name != "status" || !strings.Contains(e.data, `"live":true`) {
		t.Fatalf("after ready: %+v, want status live", e)
	}
	run.emit(Event{Topic: "catalog.authors.events", Partition: 2, Offset: 7, Key: "jane-austen", Type: "AuthorCreated", Version: 1,
		MsgID: "m-1", Event: json.RawMessage(`{"type":"AuthorCreated","code":"jane-austen","firstName":"Jane","lastName":"Austen"}`)})
	e := s.nextEvent()
	if e.name != "event" {
		t.Fatalf("got %+v, want an event", e)
	}
	var got struct {
		Topic   string         `json:"topic"`
		Key     string         `json:"key"`
		Type    string         `json:"type"`
		Version int64          `json:"version"`
		MsgID   string         `json:"msgId"`
		Event   map[string]any `json:"event"`
	}
	if err := json.Unmarshal([]byte(e.data), &got); err != nil {
		t.Fatalf("data %s: %v", e.data, err)
	}
	if got.Topic != "catalog.authors.events" || got.Key != "jane-austen" || got.Type != "AuthorCreated" || got.Version != 1 || got.MsgID != "m-1" ||
		got.Event["type"] != "AuthorCreated" || got.Event["firstName"] != "Jane" {
		t.Errorf("event data = %s", e.data)
	}
	// Idle: keep-alive comments.
	if c := s.next(); c.comment != "keep-alive" {
		t.Errorf("idle stream sent %+v, want a keep-alive comment", c)
	}
	// The client goes away: its subscription ends.
	s.cl.Close()
	waitFor(t, func() bool { return feed.Subscribers() == 0 }, "the subscription to end with the client")
}

func TestStreamEndsWhenFeedCloses(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{})
	srv := newServer(t, Config{Feed: feed})
	s := openStream(t, srv.URL+StreamPath)
	s.nextEvent()
	run := src.next(t)
	feed.Close()
	if run.ctx.Err() == nil {
		t.Error("Close did not stop the source")
	}
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(s.r); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stream ended with %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end when the feed closed")
	}
	resp, _ := get(t, srv.URL+StreamPath)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET after Close = %d, want 503", resp.StatusCode)
	}
}

func TestStreamWithoutFeed(t *testing.T) {
	srv := newServer(t, Config{})
	resp, _ := get(t, srv.URL+StreamPath)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET %s without a feed = %d %s", StreamPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestStreamDropsSlowSubscriber(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{Buffer: 4})
	t.Cleanup(feed.Close)
	srv := newServer(t, Config{Feed: feed})
	s := openStream(t, srv.URL+StreamPath)
	s.nextEvent()
	run := src.next(t)
	run.ready()
	// Far more than the buffer and the connection's buffers hold, while
	// the client reads nothing.
	big := json.RawMessage(`{"type":"BookCreated","title":"` + strings.Repeat("x", 64<<10) + `"}`)
	for range 400 {
		run.emit(Event{Topic: "catalog.books.events", Key: "b", Type: "BookCreated", Event: big})
	}
	waitFor(t, func() bool { return feed.Subscribers() == 0 }, "the slow subscriber to be dropped")
	for {
		e := s.nextEvent()
		if e.name == "dropped" {
			break
		}
	}
}

func TestFeedFanOutAndDrop(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{Buffer: 3})
	t.Cleanup(feed.Close)
	fast, err := feed.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := feed.Subscribe()
	run := src.next(t)
	if m := <-fast.C(); m.Name != "status" {
		t.Fatalf("first message %+v, want status", m)
	}
	for i := range 10 {
		run.emit(Event{Key: "k", Offset: int64(i)})
		m := <-fast.C()
		if m.Name != "event" || !strings.Contains(string(m.Data), `"offset":`) {
			t.Fatalf("fast subscriber got %+v", m)
		}
	}
	n := 0
	for range slow.C() {
		n++
	}
	if !slow.Dropped() || n != 3 {
		t.Errorf("slow subscriber: dropped %v after %d messages, want dropped after its 3 buffered", slow.Dropped(), n)
	}
	if feed.Subscribers() != 1 {
		t.Errorf("%d subscribers, want 1", feed.Subscribers())
	}
	// A subscriber arriving late is told the feed is live.
	run.ready()
	<-fast.C()
	late, _ := feed.Subscribe()
	if m := <-late.C(); !strings.Contains(string(m.Data), `"live":true`) {
		t.Errorf("late subscriber's status = %s", m.Data)
	}
}

func TestFeedStopsWhenIdleAndRestarts(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{IdleStop: 20 * time.Millisecond})
	t.Cleanup(feed.Close)
	sub, _ := feed.Subscribe()
	first := src.next(t)
	feed.Unsubscribe(sub)
	feed.Unsubscribe(sub) // twice is fine
	select {
	case <-first.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the source kept running without subscribers")
	}
	sub, _ = feed.Subscribe()
	second := src.next(t)
	// What the stopped run still reports goes nowhere.
	first.emit(Event{Key: "stale"})
	second.emit(Event{Key: "fresh"})
	<-sub.C() // status
	if m := <-sub.C(); !strings.Contains(string(m.Data), `"key":"fresh"`) {
		t.Errorf("got %s, want the new run's event", m.Data)
	}
}

func TestFeedRetriesAFailingSource(t *testing.T) {
	calls := make(chan struct{}, 10)
	src := sourceFunc(func(ctx context.Context, ready func([]Event), emit func(Event)) error {
		calls <- struct{}{}
		return io.ErrUnexpectedEOF
	})
	feed := NewFeed(src, FeedConfig{Backoff: time.Millisecond})
	sub, _ := feed.Subscribe()
	for range 3 {
		select {
		case <-calls:
		case <-time.After(5 * time.Second):
			t.Fatal("the source was not run again after failing")
		}
	}
	feed.Close()
	if _, err := feed.Subscribe(); err != ErrClosed {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	for range sub.C() {
	}
	if sub.Dropped() {
		t.Error("a subscription ended by Close reports Dropped")
	}
}

func TestFeedLimitsSubscribers(t *testing.T) {
	feed := NewFeed(newFakeSource(), FeedConfig{MaxSubscribers: 1})
	t.Cleanup(feed.Close)
	if _, err := feed.Subscribe(); err != nil {
		t.Fatal(err)
	}
	if _, err := feed.Subscribe(); err != ErrTooManySubscribers {
		t.Errorf("second subscriber: %v, want ErrTooManySubscribers", err)
	}
}

type sourceFunc func(ctx context.Context, ready func([]Event), emit func(Event)) error

func (f sourceFunc) Run(ctx context.Context, ready func([]Event), emit func(Event)) error {
	return f(ctx, ready, emit)
}

func TestFlusherOf(t *testing.T) {
	rec := httptest.NewRecorder()
	if flusherOf(rec) == nil {
		t.Error("no flusher for a Flusher")
	}
	if flusherOf(&recorder{ResponseWriter: rec}) == nil {
		t.Error("no flusher behind an embedding wrapper")
	}
	if flusherOf(unwrapper{rec}) == nil {
		t.Error("no flusher behind Unwrap")
	}
	if flusherOf(plain{}) != nil {
		t.Error("a flusher for a writer that cannot flush")
	}
}

type unwrapper struct{ w http.ResponseWriter }

func (u unwrapper) Header() http.Header         { return u.w.Header() }
func (u unwrapper) Write(b []byte) (int, error) { return u.w.Write(b) }
func (u unwrapper) WriteHeader(code int)        { u.w.WriteHeader(code) }
func (u unwrapper) Unwrap() http.ResponseWriter { return u.w }

type plain struct{}

func (plain) Header() http.Header         { return http.Header{} }
func (plain) Write(b []byte) (int, error) { return len(b), nil }
func (plain) WriteHeader(int)             {}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
