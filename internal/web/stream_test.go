package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFeedSharesFrames(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{})
	t.Cleanup(feed.Close)
	a, _ := feed.Subscribe()
	b, _ := feed.Subscribe()
	run := src.next(t)
	<-a.C()
	<-b.C()
	run.emit(benchEvent())
	ma, mb := <-a.C(), <-b.C()
	fa, fb := ma.sse(), mb.sse()
	if &fa[0] != &fb[0] {
		t.Error("the subscribers got an event encoded twice, want one frame shared")
	}
	if want := "event: event\ndata: " + string(ma.Data) + "\n\n"; string(fa) != want {
		t.Errorf("frame = %q, want %q", fa, want)
	}
	if !json.Valid(ma.Data) {
		t.Errorf("data %s is not JSON", ma.Data)
	}
}

// TestStreamEncodesEachEventOnce counts the allocations of an event
// delivered through the stream handler to many subscribers: encoding it
// for each would take one or more per subscriber.
func TestStreamEncodesEachEventOnce(t *testing.T) {
	const subscribers = 100
	f := newFanout(t, subscribers, Config{})
	e := benchEvent()
	var sent int64
	allocs := testing.AllocsPerRun(20, func() {
		f.run.emit(e)
		sent++
		f.await(t, sent)
	})
	if allocs >= subscribers/4 {
		t.Errorf("%.0f allocations per event delivered to %d subscribers, want a few: the event is encoded per subscriber", allocs, subscribers)
	}
}

func TestFeedDroppedSubscriberHoldsItsPlace(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{Buffer: 1, MaxSubscribers: 1})
	t.Cleanup(feed.Close)
	slow, err := feed.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	run := src.next(t)
	run.emit(Event{Key: "k"}) // the status fills the buffer: dropped
	if !slow.Dropped() || feed.Subscribers() != 0 {
		t.Fatalf("dropped %v, %d subscribers; want the slow one dropped", slow.Dropped(), feed.Subscribers())
	}
	if _, err := feed.Subscribe(); err != ErrTooManySubscribers {
		t.Fatalf("Subscribe while a dropped subscriber has not unsubscribed: %v, want ErrTooManySubscribers", err)
	}
	feed.Unsubscribe(slow)
	if _, err := feed.Subscribe(); err != nil {
		t.Errorf("Subscribe after the dropped one unsubscribed: %v", err)
	}
}

// stuckWriter is a memWriter whose event writes block, like those to a
// client that stopped reading, until unstick fails them (as their
// deadline would).
type stuckWriter struct {
	*memWriter
	once    sync.Once
	stuck   chan struct{} // closed once a write blocks
	unstick chan struct{}
}

func newStuckWriter() *stuckWriter {
	return &stuckWriter{memWriter: newMemWriter(), stuck: make(chan struct{}), unstick: make(chan struct{})}
}

func (w *stuckWriter) Write(b []byte) (int, error) {
	if !bytes.HasPrefix(b, []byte(eventFrameStart)) {
		return w.memWriter.Write(b)
	}
	w.once.Do(func() { close(w.stuck) })
	<-w.unstick
	return 0, os.ErrDeadlineExceeded
}

// serveStream runs h for a stream request from remote; done is closed
// when h returns.
func serveStream(t *testing.T, h http.Handler, w http.ResponseWriter, remote string) (cancel func(), done <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, StreamPath, nil)
	r.RemoteAddr = remote
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		h.ServeHTTP(w, r)
	}()
	return cancel, ch
}

func wait(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestStreamHoldsPlaceUntilHandlerReturns: a subscriber dropped while
// its write is blocked keeps its place until the write fails and its
// handler returns, so clients that stop reading cannot pile up.
func TestStreamHoldsPlaceUntilHandlerReturns(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{Buffer: 2})
	t.Cleanup(feed.Close)
	h := Handlers(Config{Feed: feed, MaxStreams: 1, KeepAlive: time.Hour})["GET "+StreamPath]

	stuck := newStuckWriter()
	_, done := serveStream(t, h, stuck, "192.0.2.1:1000")
	run := src.next(t)
	run.emit(Event{Key: "first"})
	wait(t, stuck.stuck, "the write to block")
	for i := 0; feed.Subscribers() > 0; i++ {
		run.emit(Event{Key: fmt.Sprint(i)})
	}
	// Dropped from the feed, but its handler is still in its write.
	other := newMemWriter()
	_, otherDone := serveStream(t, h, other, "192.0.2.2:1000")
	wait(t, otherDone, "the refusal")
	if other.status.Load() != http.StatusServiceUnavailable {
		t.Fatalf("a stream while the dropped one's handler runs: %d, want 503", other.status.Load())
	}
	close(stuck.unstick)
	wait(t, done, "the stuck handler to return once its write failed")
	next := newMemWriter()
	cancel, nextDone := serveStream(t, h, next, "192.0.2.2:1000")
	waitFor(t, func() bool { return next.status.Load() != 0 }, "the next stream's answer")
	if next.status.Load() != http.StatusOK {
		t.Errorf("a stream after the stuck one's handler returned: %d, want 200", next.status.Load())
	}
	cancel()
	wait(t, nextDone, "the next stream to end")
}

// dialStream opens a stream on a raw connection that reads nothing, with
// a small receive buffer, so that the server's writes soon block.
func dialStream(t *testing.T, srv *httptest.Server) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*net.TCPConn)
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET "+StreamPath+" HTTP/1.1\r\nHost: catalog\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// closedConns serves cfg like newServer and records which connections
// the server has closed, by their clients' addresses.
func closedConns(t *testing.T, cfg Config) (*httptest.Server, func(client net.Addr) bool) {
	var mu sync.Mutex
	closed := map[string]bool{}
	srv := startServer(t, cfg, false, func(s *http.Server) {
		s.ConnState = func(c net.Conn, state http.ConnState) {
			if state == http.StateClosed {
				mu.Lock()
				defer mu.Unlock()
				closed[c.RemoteAddr().String()] = true
			}
		}
	})
	return srv, func(client net.Addr) bool {
		mu.Lock()
		defer mu.Unlock()
		return closed[client.String()]
	}
}

// streamStatus opens a stream, closes it at once and returns its status.
func streamStatus(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func bigEvent(size int) Event {
	return Event{Topic: "catalog.books.events", Key: "b", Type: "BookCreated",
		Event: json.RawMessage(`{"type":"BookCreated","title":"` + strings.Repeat("x", size) + `"}`)}
}

// TestStreamDisconnectsClientThatStopsReading: a client that stops
// reading while its queue has room is caught by the write deadline: its
// stream ends, its connection is closed, and its place is freed.
func TestStreamDisconnectsClientThatStopsReading(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{Buffer: 1000})
	t.Cleanup(feed.Close)
	srv, isClosed := closedConns(t, Config{Feed: feed, MaxStreams: 1, StreamWriteTimeout: 200 * time.Millisecond})
	conn := dialStream(t, srv)
	run := src.next(t)
	run.ready()
	// 32 MiB: more than the connection's buffers hold, far less than the
	// queue (so it is not dropped for lagging).
	e := bigEvent(1 << 20)
	for range 32 {
		run.emit(e)
	}
	waitFor(t, func() bool { return isClosed(conn.LocalAddr()) }, "the server to close the connection of the client that stopped reading")
	if got := streamStatus(t, srv.URL+StreamPath); got != http.StatusOK {
		t.Errorf("a stream once the stuck one is closed = %d, want 200", got)
	}
}

// TestStreamDropsClientThatFallsBehind: a client that reads nothing while
// events keep coming overflows its queue and is dropped; its connection
// is closed and only then is its place freed.
func TestStreamDropsClientThatFallsBehind(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{Buffer: 4})
	t.Cleanup(feed.Close)
	srv, isClosed := closedConns(t, Config{Feed: feed, MaxStreams: 1, StreamWriteTimeout: 500 * time.Millisecond})
	conn := dialStream(t, srv)
	run := src.next(t)
	run.ready()
	e := bigEvent(64 << 10)
	for i := 0; feed.Subscribers() > 0; i++ {
		if i == 10000 {
			t.Fatal("the client that reads nothing was not dropped")
		}
		run.emit(e)
	}
	waitFor(t, func() bool { return isClosed(conn.LocalAddr()) }, "the server to close the connection of the dropped client")
	if got := streamStatus(t, srv.URL+StreamPath); got != http.StatusOK {
		t.Errorf("a stream once the dropped one is closed = %d, want 200", got)
	}
}

// getStream is get for a request that ought to be refused: should the
// stream open instead, it is closed and the body is empty.
func getStream(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp, ""
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func problemOf(t *testing.T, resp *http.Response, body string) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != resp.StatusCode {
		t.Errorf("problem %s: %v", body, err)
	}
	return p.Detail
}

func TestStreamLimitsPerClient(t *testing.T) {
	feed := NewFeed(newFakeSource(), FeedConfig{})
	t.Cleanup(feed.Close)
	cfg := Config{Feed: feed, MaxStreams: 10, MaxStreamsPerClient: 2}
	srv := newServer(t, cfg)
	first := openStream(t, srv.URL+StreamPath)
	openStream(t, srv.URL+StreamPath)
	// A header cannot make the same connection peer another client.
	resp, body := getStream(t, srv.URL+StreamPath, "X-Forwarded-For", "203.0.113.7")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a third stream from one address = %d, want 429", resp.StatusCode)
	}
	if d := problemOf(t, resp, body); !strings.Contains(d, "MaxStreamsPerClient") || !strings.Contains(d, "2") {
		t.Errorf("detail %q does not name the cap", d)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	first.cl.Close()
	waitFor(t, func() bool { return streamStatus(t, srv.URL+StreamPath) == http.StatusOK }, "a place to be freed when a stream ends")

	// Other addresses have their own places; IPv4-mapped IPv6 addresses
	// are the IPv4 ones.
	h := Handlers(Config{Feed: feed, MaxStreamsPerClient: 1, KeepAlive: time.Hour})["GET "+StreamPath]
	for _, c := range []struct {
		remote string
		want   int
	}{
		{"192.0.2.1:1000", http.StatusOK},
		{"192.0.2.2:1000", http.StatusOK},
		{"[::ffff:192.0.2.1]:2000", http.StatusTooManyRequests},
		{"[2001:db8::1]:1000", http.StatusOK},
		// An IPv6 client is its /64: one host can take any address
		// of it.
		{"[2001:db8::2]:1000", http.StatusTooManyRequests},
		{"[2001:db8:0:1::1]:1000", http.StatusOK},
	} {
		w := newMemWriter()
		serveStream(t, h, w, c.remote)
		waitFor(t, func() bool { return w.status.Load() != 0 }, "the answer")
		if got := int(w.status.Load()); got != c.want {
			t.Errorf("a stream from %s = %d, want %d", c.remote, got, c.want)
		}
	}
}

func TestStreamLimitsTotal(t *testing.T) {
	feed := NewFeed(newFakeSource(), FeedConfig{})
	t.Cleanup(feed.Close)
	srv := newServer(t, Config{Feed: feed, MaxStreams: 2, MaxStreamsPerClient: 10})
	openStream(t, srv.URL+StreamPath)
	openStream(t, srv.URL+StreamPath)
	resp, body := getStream(t, srv.URL+StreamPath)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a stream beyond MaxStreams = %d, want 503", resp.StatusCode)
	}
	if d := problemOf(t, resp, body); !strings.Contains(d, "MaxStreams") || !strings.Contains(d, "2") {
		t.Errorf("detail %q does not name the cap", d)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if resp, _ := http.Head(srv.URL + StreamPath); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD at the cap = %d, want 200 (it opens no stream)", resp.StatusCode)
	}
}

// startServer is newServer with the http.Server tuned before it starts,
// over HTTP/2 and TLS when h2 is set.
func startServer(t *testing.T, cfg Config, h2 bool, tune func(*http.Server)) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for pattern, h := range Handlers(cfg) {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&recorder{ResponseWriter: w}, r)
	}))
	if tune != nil {
		tune(srv.Config)
	}
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

func openStreamWith(t *testing.T, client *http.Client, url string) (*sseReader, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	return &sseReader{t: t, r: bufio.NewReader(resp.Body), cl: resp.Body}, resp
}

// TestStreamOutlivesServerWriteTimeout: the server's WriteTimeout bounds
// whole responses; a stream replaces it with its per-write deadlines.
func TestStreamOutlivesServerWriteTimeout(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{})
	t.Cleanup(feed.Close)
	const writeTimeout = 200 * time.Millisecond
	srv := startServer(t, Config{Feed: feed, KeepAlive: time.Hour}, false, func(s *http.Server) { s.WriteTimeout = writeTimeout })
	s, _ := openStreamWith(t, srv.Client(), srv.URL+StreamPath)
	s.nextEvent()
	run := src.next(t)
	time.Sleep(3 * writeTimeout)
	run.emit(Event{Key: "after-the-server-write-timeout"})
	if e := s.nextEvent(); e.name != "event" || !strings.Contains(e.data, "after-the-server-write-timeout") {
		t.Errorf("got %+v, want the event", e)
	}
}

// TestStreamIdleOverHTTP2: over HTTP/2 a write deadline resets the stream
// when it passes, write or no write, so it is cleared between writes.
func TestStreamIdleOverHTTP2(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{})
	t.Cleanup(feed.Close)
	const writeTimeout = 200 * time.Millisecond
	srv := startServer(t, Config{Feed: feed, KeepAlive: time.Hour, StreamWriteTimeout: writeTimeout}, true, nil)
	s, resp := openStreamWith(t, srv.Client(), srv.URL+StreamPath)
	if resp.ProtoMajor != 2 {
		t.Fatalf("served over %s, want HTTP/2", resp.Proto)
	}
	if c := resp.Header.Get("Connection"); c != "" {
		t.Errorf("Connection: %s over HTTP/2", c)
	}
	s.nextEvent()
	run := src.next(t)
	time.Sleep(3 * writeTimeout)
	run.emit(Event{Key: "after-an-idle-while"})
	if e := s.nextEvent(); e.name != "event" || !strings.Contains(e.data, "after-an-idle-while") {
		t.Errorf("got %+v, want the event", e)
	}
}

// TestStreamClosesItsConnection: once a stream ends, its HTTP/1
// connection is closed rather than kept for another request, so that what
// a stuck client left in its buffers is freed too.
func TestStreamClosesItsConnection(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{})
	srv, isClosed := closedConns(t, Config{Feed: feed})
	conn := dialStream(t, srv)
	src.next(t)
	feed.Close()
	waitFor(t, func() bool { return isClosed(conn.LocalAddr()) }, "the server to close the connection of an ended stream")
}
