package web

import (
	"log/slog"
	"net/http"
	"reflect"
	"time"
)

// streamHandler serves the feed as server-sent events: a "status" event
// (is the feed live yet?), then an "event" event per committed event, with
// a keep-alive comment when idle. A subscriber that falls behind gets a
// "dropped" event and the stream ends; EventSource then reconnects.
type streamHandler struct {
	feed      *Feed
	keepAlive time.Duration
	log       *slog.Logger
}

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
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // tell nginx and the like not to buffer
	hd.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return
	}
	sub, err := h.feed.Subscribe()
	if err != nil {
		hd.Del("Content-Type")
		hd.Set("Retry-After", "5")
		writeProblem(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer h.feed.Unsubscribe(sub)
	w.WriteHeader(http.StatusOK)
	// How long EventSource waits before it reconnects (ms).
	if !h.write(w, flusher, []byte("retry: 2000\n\n")) {
		return
	}
	keepAlive := time.NewTicker(h.keepAlive)
	defer keepAlive.Stop()
	for {
		var out []byte
		select {
		case <-r.Context().Done():
			return
		case m, ok := <-sub.C():
			if !ok {
				if sub.Dropped() {
					h.write(w, flusher, newMessage("dropped", []byte(`{"detail":"this page fell behind the events and was disconnected; reconnecting"}`)).sse())
				}
				return
			}
			// The feed's frame, shared by every stream.
			out = m.sse()
		case <-keepAlive.C:
			out = []byte(": keep-alive\n\n")
		}
		if !h.write(w, flusher, out) {
			return
		}
	}
}

func (h *streamHandler) write(w http.ResponseWriter, f http.Flusher, b []byte) bool {
	if _, err := w.Write(b); err != nil {
		return false
	}
	f.Flush()
	return true
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
		if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
			w = u.Unwrap()
			continue
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
		w, _ = v.FieldByIndex(f.Index).Interface().(http.ResponseWriter)
	}
	return nil
}
