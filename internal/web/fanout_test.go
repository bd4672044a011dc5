package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fanout serves one feed to many in-memory subscribers through the stream
// handler, so that the cost of the fan-out can be measured without the
// network: each subscriber writes into a memWriter.
type fanout struct {
	run     *fakeRun
	feed    *Feed
	writers []*memWriter
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// newFanout subscribes n clients (each from its own address) and waits
// until every one has its stream open and the feed is live.
func newFanout(tb testing.TB, n int, cfg Config) *fanout {
	tb.Helper()
	src := newFakeSource()
	f := &fanout{feed: NewFeed(src, FeedConfig{MaxSubscribers: n})}
	cfg.Feed = f.feed
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = n
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = time.Hour // no keep-alive comments while measuring
	}
	h := Handlers(cfg)["GET "+StreamPath]
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	for i := range n {
		w := newMemWriter()
		f.writers = append(f.writers, w)
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, StreamPath, nil)
		r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:4000", i>>16&255, i>>8&255, i&255)
		f.done.Add(1)
		go func() {
			defer f.done.Done()
			h.ServeHTTP(w, r)
			w.ended.Store(true)
		}()
	}
	tb.Cleanup(f.close)
	select {
	case f.run = <-src.runs:
	case <-time.After(10 * time.Second):
		tb.Fatal("the source was not started")
	}
	waitForTB(tb, func() bool { return f.feed.Subscribers() == n }, "every subscriber to subscribe")
	f.run.ready()
	waitForTB(tb, func() bool {
		for _, w := range f.writers {
			if !w.sawLive.Load() {
				return false
			}
		}
		return true
	}, "every subscriber to be told the feed is live")
	return f
}

func (f *fanout) close() {
	f.cancel()
	f.feed.Close()
	f.done.Wait()
}

// await waits until every subscriber has written want event frames, and
// fails if one was dropped meanwhile.
func (f *fanout) await(tb testing.TB, want int64) {
	for _, w := range f.writers {
		for w.events.Load() < want {
			if w.ended.Load() {
				tb.Fatalf("a subscriber's stream ended after %d events of %d", w.events.Load(), want)
			}
			runtime.Gosched()
		}
	}
}

// memWriter is a flushable http.ResponseWriter that buffers its writes
// the way net/http does (4 KiB) and counts what reaches the "socket".
type memWriter struct {
	h       http.Header
	buf     *bufio.Writer
	sink    countWriter
	events  atomic.Int64 // event frames written
	sawLive atomic.Bool
	ended   atomic.Bool  // the handler returned
	status  atomic.Int64 // as written by WriteHeader
}

func newMemWriter() *memWriter {
	w := &memWriter{h: http.Header{}}
	w.buf = bufio.NewWriterSize(&w.sink, 4096)
	return w
}

const (
	eventFrameStart = "event: event\n"
	liveStatus      = `"live":true`
)

func (w *memWriter) Header() http.Header  { return w.h }
func (w *memWriter) WriteHeader(code int) { w.status.Store(int64(code)) }
func (w *memWriter) Write(b []byte) (int, error) {
	// The handler writes each frame on its own: a prefix check is enough,
	// and cheap enough not to weigh in the benchmark.
	if bytes.HasPrefix(b, []byte(eventFrameStart)) {
		w.events.Add(1)
	}
	if !w.sawLive.Load() && bytes.Contains(b, []byte(liveStatus)) {
		w.sawLive.Store(true)
	}
	return w.buf.Write(b)
}
func (w *memWriter) Flush() { _ = w.buf.Flush() }

// SetWriteDeadline lets http.ResponseController set deadlines, as it can
// on a real connection; nothing here blocks.
func (w *memWriter) SetWriteDeadline(time.Time) error { return nil }

// countWriter counts the writes that reach it (one per syscall, on a real
// connection) and discards them.
type countWriter struct{ writes, bytes atomic.Int64 }

func (c *countWriter) Write(b []byte) (int, error) {
	c.writes.Add(1)
	c.bytes.Add(int64(len(b)))
	return len(b), nil
}

func (f *fanout) socketWrites() int64 {
	var n int64
	for _, w := range f.writers {
		n += w.sink.writes.Load()
	}
	return n
}

func benchEvent() Event {
	return Event{Topic: "catalog.books.events", Partition: 3, Offset: 12345, Key: "0d9c3a1e-5b7f-4c8e-9a61-2f4b8d7e6c50",
		Type: "BookCreated", Version: 1, MsgID: "4f8e2b6a-1c3d-4e5f-8a9b-0c1d2e3f4a5b", Timestamp: time.Unix(1700000000, 0).UTC(),
		Event: json.RawMessage(`{"type":"BookCreated","title":"Persuasion","authorCode":"jane-austen"}`)}
}

// BenchmarkFanout measures one event delivered to 1,000 subscribers: an
// op is one event, so ns/op and allocs/op are per event over all
// subscribers, and socket-writes/event counts the writes that would be
// syscalls on real connections. The source may run at most window events
// ahead of the slowest subscriber (the feed's buffer is 256), so none is
// dropped for lagging.
func BenchmarkFanout(b *testing.B) {
	const subscribers, window = 1000, 128
	f := newFanoutB(b, subscribers)
	e := benchEvent()
	writes0 := f.socketWrites()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%16 == 0 && i >= window {
			f.await(b, int64(i-window))
		}
		f.run.emit(e)
	}
	f.await(b, int64(b.N))
	b.StopTimer()
	b.ReportMetric(float64(f.socketWrites()-writes0)/float64(b.N), "socket-writes/event")
	if n := f.feed.Subscribers(); n != subscribers {
		b.Fatalf("%d subscribers left of %d: some were dropped", n, subscribers)
	}
}

// newFanoutB is newFanout for a benchmark, whose setup is not timed.
func newFanoutB(b *testing.B, n int) *fanout {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	return newFanout(b, n, Config{})
}

func waitForTB(tb testing.TB, cond func() bool, what string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
