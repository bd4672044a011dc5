package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/bookscatalog/catalog/httpapi"
)

// streamHandler serves the feed as server-sent events: a "status" event
// (is the feed live yet?), then an "event" event per committed event, with
// a keep-alive comment when idle. A subscriber that falls behind gets a
// "dropped" event and the stream ends; EventSource then reconnects. So
// does one whose writes block for writeTimeout (a client that stopped
// reading), without the "dropped" event.
type streamHandler struct {
	feed         *Feed
	keepAlive    time.Duration
	writeTimeout time.Duration
	limits       *streamLimits
	log          *slog.Logger
}

// maxBatch bounds the messages a stream writes before it flushes, so
// that a subscriber with a steady backlog still flushes now and then.
const maxBatch = 64

const (
	retryFrame     = "retry: 2000\n\n" // how long EventSource waits before it reconnects (ms)
	keepAliveFrame = ": keep-alive\n\n"
	droppedFrame   = "event: dropped\ndata: {\"detail\":\"this page fell behind the events and was disconnected; reconnecting\"}\n\n"
)

func (h *streamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.feed == nil {
		writeProblem(w, http.StatusServiceUnavailable, "this instance has no live event feed")
		return
	}
	flusher := flusherOf(w)
	if flusher == nil {
		h.log.Error("live events: the response writer cannot flush; server-sent events need it")
		writeProblem(w, http.StatusInternalServerError, "streaming is not supported here")
		return
	}
	// The server's WriteTimeout, if any, bounds the whole response; a
	// stream lasts as long as the client stays, so it is cleared here and
	// each write gets its own deadline instead (see sseWriter).
	rc, err := clearWriteDeadline(w)
	if errors.Is(err, http.ErrNotSupported) {
		h.log.Error("live events: the response writer cannot set write deadlines; a client that stops reading would hold its stream forever")
		writeProblem(w, http.StatusInternalServerError, "streaming is not supported here")
		return
	}
	if err != nil {
		return // the connection is gone
	}
	// The server still sends what is buffered once this returns (a
	// refusal, or a stream's last chunk); bound that write too. The
	// server clears the deadline afterwards.
	defer func() { _ = rc.SetWriteDeadline(time.Now().Add(h.writeTimeout)) }()
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // tell nginx and the like not to buffer
	hd.Set("X-Content-Type-Options", "nosniff")
	if r.ProtoMajor == 1 {
		// A stream ends when its client leaves, falls behind, stops
		// reading or the feed closes: the connection is not worth
		// keeping then (EventSource opens a new one), and closing it
		// frees its buffers. (Over HTTP/2 the header would close every
		// stream of the connection; the stream ending is enough there.)
		hd.Set("Connection", "close")
	}
	if r.Method == http.MethodHead {
		return
	}
	client := clientOf(r)
	if status, detail := h.limits.acquire(client); status != 0 {
		hd.Del("Content-Type")
		hd.Set("Retry-After", "5")
		writeProblem(w, status, detail)
		return
	}
	// The place is held until the handler returns: until then, a
	// stream that was dropped or whose write is stuck still counts.
	defer h.limits.release(client)
	sub, err := h.feed.Subscribe()
	if err != nil {
		hd.Del("Content-Type")
		hd.Set("Retry-After", "5")
		writeProblem(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer h.feed.Unsubscribe(sub)
	out := &sseWriter{w: w, flusher: flusher, rc: rc, timeout: h.writeTimeout}
	w.WriteHeader(http.StatusOK)
	if out.write([]byte(retryFrame)) != nil || out.flush() != nil {
		return
	}
	keepAlive := time.NewTicker(h.keepAlive)
	defer keepAlive.Stop()
	for {
		var m Message
		var ok bool
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			if out.write([]byte(keepAliveFrame)) != nil || out.flush() != nil {
				return
			}
			continue
		case m, ok = <-sub.C():
		}
		// Write m and whatever else is queued, then flush once: a stream
		// woken late catches up in a few large writes rather than one
		// small one per message. The frames are the feed's, shared by
		// every stream.
	batch:
		for n := 1; ok && !sub.Dropped(); n++ {
			if out.write(m.sse()) != nil {
				return
			}
			if n == maxBatch {
				break
			}
			select {
			case m, ok = <-sub.C():
			default:
				break batch
			}
		}
		// A dropped subscriber skips what it still has queued: it is
		// told at once and its stream ends.
		dropped := sub.Dropped()
		if dropped && out.write([]byte(droppedFrame)) != nil {
			return
		}
		if out.flush() != nil || dropped || !ok {
			return
		}
	}
}

// sseWriter writes a stream. Every write has a deadline, so that a client
// that stops reading (its connection's buffers full) fails the write and
// ends its stream, instead of holding it open for good.
type sseWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher
	rc      *http.ResponseController
	timeout time.Duration
}

func (s *sseWriter) write(b []byte) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		return err
	}
	_, err := s.w.Write(b)
	return err
}

// flush sends what was written, then clears the deadline: over HTTP/2 a
// deadline ends the stream when it passes even with no write under way,
// and a stream may rightly be idle for long.
func (s *sseWriter) flush() error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		return err
	}
	if f, ok := s.flusher.(interface{ FlushError() error }); ok {
		if err := f.FlushError(); err != nil {
			return err
		}
	} else {
		s.flusher.Flush()
	}
	return s.rc.SetWriteDeadline(time.Time{})
}

// streamLimits bounds the open streams, in all and per client. A stream
// holds its place until its handler returns, so a client that stopped
// reading counts until its connection is given up.
type streamLimits struct {
	max, perClient int

	mu       sync.Mutex
	total    int
	byClient map[string]int // only clients with streams open: at most max entries
}

func newStreamLimits(total, perClient int) *streamLimits {
	return &streamLimits{max: total, perClient: perClient, byClient: map[string]int{}}
}

// acquire takes a place for a stream of client; when there is none it
// returns the status and detail of the refusal, else status 0.
func (l *streamLimits) acquire(client string) (status int, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byClient[client] >= l.perClient {
		return http.StatusTooManyRequests, fmt.Sprintf("at most %d live event streams may be open from one address (MaxStreamsPerClient); close one first", l.perClient)
	}
	if l.total >= l.max {
		return http.StatusServiceUnavailable, fmt.Sprintf("this instance serves at most %d live event streams at once (MaxStreams); try again later", l.max)
	}
	l.total++
	l.byClient[client]++
	return 0, ""
}

// release gives back a place acquire took.
func (l *streamLimits) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.byClient[client] - 1; n > 0 {
		l.byClient[client] = n
	} else {
		delete(l.byClient, client)
	}
}

// clientOf tells the clients apart for MaxStreamsPerClient, as the HTTP
// server's per-client bound does.
func clientOf(r *http.Request) string { return httpapi.ClientOf(r) }

// clearWriteDeadline clears the write deadline of w's connection and
// returns the http.ResponseController that set it, for the stream's own
// deadlines. Like flusherOf, it looks behind wrappers without an Unwrap
// method too. The error wraps http.ErrNotSupported when no writer in the
// chain supports deadlines.
func clearWriteDeadline(w http.ResponseWriter) (*http.ResponseController, error) {
	for range 10 {
		if w == nil {
			break
		}
		// A ResponseController follows Unwrap methods itself.
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Time{}); !errors.Is(err, http.ErrNotSupported) {
			return rc, err
		}
		w = unwrap(w)
	}
	return nil, fmt.Errorf("no write deadlines: %w", http.ErrNotSupported)
}

// flusherOf finds the http.Flusher behind w, which middleware may have
// wrapped: through an Unwrap method (as http.ResponseController does), or,
// for a wrapper without one, through the http.ResponseWriter it embeds.
func flusherOf(w http.ResponseWriter) http.Flusher {
	for range 10 {
		if w == nil {
			return nil
		}
		if f, ok := w.(http.Flusher); ok {
			return f
		}
		w = unwrap(w)
	}
	return nil
}

// unwrap returns the writer that w wraps: through its Unwrap method, or
// else the exported http.ResponseWriter it embeds; nil if neither.
func unwrap(w http.ResponseWriter) http.ResponseWriter {
	if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
		return u.Unwrap()
	}
	v := reflect.ValueOf(w)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	f, ok := v.Type().FieldByName("ResponseWriter")
	if !ok || !f.Anonymous || f.Type != reflect.TypeFor[http.ResponseWriter]() || !f.IsExported() {
		return nil
	}
	inner, _ := v.FieldByIndex(f.Index).Interface().(http.ResponseWriter)
	return inner
}
