package httpapi

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of ServerConfig.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxRequests       = 1000
	DefaultMaxStreams        = 32
)

// ServerConfig bounds what one client can hold of the HTTP server: time to
// send its request, time the server spends writing to it, idle connections
// and header size. A zero field takes its default.
type ServerConfig struct {
	// ReadHeaderTimeout bounds reading a request's headers (slowloris);
	// default DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included;
	// default DefaultReadTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds a response, from the end of the request's
	// headers; default DefaultWriteTimeout. Handlers that wait on
	// purpose extend their own deadline with http.ResponseController:
	// a write waiting for its outcome (WRITE_TIMEOUT) and a long poll of
	// a command's outcome (?wait=, at most MaxWait) by as long as they
	// wait; the server-sent event stream of the web page lifts it for
	// its connection (SetWriteDeadline(time.Time{})).
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a kept-alive connection waits for its
	// next request; default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers (net/http allows 4 KiB
	// more); default DefaultMaxHeaderBytes. Larger headers get 431.
	MaxHeaderBytes int
	// MaxRequests bounds the requests handled at once; a request beyond
	// it is answered 503 with Retry-After at once. Over HTTP/1 a
	// connection carries one request at a time, so LimitListener's bound
	// holds them too; over HTTP/2 a connection carries many, and this is
	// what bounds the handlers (and their bodies) one client can hold.
	// Default DefaultMaxRequests.
	MaxRequests int
	// MaxStreams bounds the requests one HTTP/2 connection carries at
	// once (net/http allows 250), so that one connection cannot take the
	// whole of MaxRequests; default DefaultMaxStreams.
	MaxStreams int
	// Logger, when set, receives the server's own errors (failed TLS
	// handshakes, accept errors, panics net/http recovers) at warn level
	// instead of the standard logger.
	Logger *slog.Logger
}

// NewServer returns an HTTP server for h with cfg's limits. The caller
// serves it on a listener, best one wrapped by LimitListener.
func NewServer(h http.Handler, cfg ServerConfig) *http.Server {
	or := func(d, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d
	}
	orInt := func(n, def int) int {
		if n <= 0 {
			return def
		}
		return n
	}
	srv := &http.Server{
		Handler:           limitRequests(h, orInt(cfg.MaxRequests, DefaultMaxRequests)),
		ReadHeaderTimeout: or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       or(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      or(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       or(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ConnState:         trackIdle,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: orInt(cfg.MaxStreams, DefaultMaxStreams)},
	}
	if srv.MaxHeaderBytes <= 0 {
		srv.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.Logger != nil {
		srv.ErrorLog = slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)
	}
	return srv
}

// limitRequests answers 503 to a request that arrives while max are being
// handled, rather than queueing it: a client told to retry costs nothing,
// a queued one holds its goroutine and body.
func limitRequests(h http.Handler, max int) http.Handler {
	slots := make(chan struct{}, max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		default:
			w.Header().Set("Retry-After", "1")
			writeProblem(w, problem(http.StatusServiceUnavailable, "the server is handling %d requests, its most at once; retry in a moment", max))
			return
		}
		defer func() { <-slots }()
		h.ServeHTTP(w, r)
	})
}

// LimitListener returns a listener that has at most max connections open at
// once. When a client connects while max are open, the connection that has
// been idle longest between requests (a kept-alive one, as a server made by
// NewServer reports) is closed to make room; with none idle, the client
// waits until one is closed or goes idle (or the listener is closed), and
// the clients behind it stay in the kernel's backlog rather than in the
// process's memory. max < 1 means no limit: ln itself.
func LimitListener(ln net.Listener, max int) net.Listener {
	if max < 1 {
		return ln
	}
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), done: make(chan struct{}),
		idle: map[*limitConn]time.Time{}, wake: make(chan struct{}, 1)}
}

type limitListener struct {
	net.Listener
	// slots holds a token per open connection.
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu sync.Mutex
	// idle holds the connections waiting for their next request, with
	// the time each went idle.
	idle map[*limitConn]time.Time
	// wake tells an Accept waiting for a slot that a connection went idle.
	wake chan struct{}
}

// Accept waits for a connection, then for a slot for it: without a free
// one, it closes the longest-idle connection, or waits for a connection
// to close or go idle. Idle connections holding every slot would otherwise
// shut new clients out until their IdleTimeout.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, l: l}, nil
		default:
		}
		if idlest := l.idlest(); idlest != nil {
			_ = idlest.Close() // frees its slot
			continue
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, l: l}, nil
		case <-l.wake:
		case <-l.done:
			_ = c.Close()
			return nil, net.ErrClosed
		}
	}
}

// idlest removes and returns the connection idle longest; nil if none is.
func (l *limitListener) idlest() *limitConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out *limitConn
	var since time.Time
	for c, t := range l.idle {
		if out == nil || t.Before(since) {
			out, since = c, t
		}
	}
	delete(l.idle, out)
	return out
}

func (l *limitListener) setIdle(c *limitConn, idle bool) {
	l.mu.Lock()
	if idle {
		l.idle[c] = time.Now()
	} else {
		delete(l.idle, c)
	}
	l.mu.Unlock()
	if idle {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// Close closes the listener and ends an Accept waiting for a slot.
func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitConn frees its slot when closed, once however often it is closed
// (net/http may close a connection more than once).
type limitConn struct {
	net.Conn
	l           *limitListener
	releaseOnce sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.releaseOnce.Do(func() {
		c.l.setIdle(c, false)
		<-c.l.slots
	})
	return err
}

// trackIdle is the server's ConnState hook: it tells the LimitListener a
// connection came from (under any TLS layer) whether it is idle.
func trackIdle(c net.Conn, state http.ConnState) {
	for {
		if lc, ok := c.(*limitConn); ok {
			lc.l.setIdle(lc, state == http.StateIdle)
			return
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		c = u.NetConn()
	}
}
