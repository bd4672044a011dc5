package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
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
	// DefaultMaxRequestsPerClient is a quarter of DefaultMaxRequests,
	// rounded up to the 256 writers a load test of one machine runs.
	DefaultMaxRequestsPerClient = 256
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
	// MaxRequestsPerClient bounds the requests handled at once from one
	// client, told apart by address (an IPv6 address by its /64; see
	// ClientOf): one client long-polling outcomes or trickling bodies
	// would otherwise hold all of MaxRequests and shut every other
	// client out. A request beyond it is answered 429 with Retry-After
	// at once. Behind a reverse proxy every client has the proxy's
	// address: raise it to MaxRequests there (the proxy then bounds its
	// clients). Default DefaultMaxRequestsPerClient; negative: no bound
	// but MaxRequests.
	MaxRequestsPerClient int
	// Peers, when it has a cluster secret, exempts from
	// MaxRequestsPerClient the requests another instance forwards with a
	// valid proof: their client was counted where it arrived, and the
	// instance would otherwise count as one client for all of them.
	Peers *Peers
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
		Handler:           limitRequests(h, orInt(cfg.MaxRequests, DefaultMaxRequests), perClient(cfg.MaxRequestsPerClient), cfg.Peers),
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
	// Shutdown waits for the requests in flight; one that waits on
	// purpose (a long poll) learns of it from its context and answers
	// at once (untilShutdown) rather than holding the shutdown up to its
	// bound and being cut when the process exits.
	shutdown, startShutdown := context.WithCancel(context.Background())
	srv.BaseContext = func(net.Listener) context.Context {
		return context.WithValue(context.Background(), shutdownKey{}, shutdown)
	}
	srv.RegisterOnShutdown(startShutdown)
	if cfg.Logger != nil {
		srv.ErrorLog = slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)
	}
	return srv
}

// shutdownKey is the request context key of the context that ends when the
// server (NewServer) begins shutting down.
type shutdownKey struct{}

// errShuttingDown is the cause of a context ended by untilShutdown.
var errShuttingDown = errors.New("the server is shutting down")

// untilShutdown returns ctx, ended also when the server that received r
// (NewServer) begins its graceful shutdown, with the cause
// errShuttingDown. A handler that waits on purpose waits with it, so that
// the shutdown does not wait for it.
func untilShutdown(ctx context.Context, r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	shutdown, ok := r.Context().Value(shutdownKey{}).(context.Context)
	if !ok {
		return ctx, func() { cancel(nil) }
	}
	stop := context.AfterFunc(shutdown, func() { cancel(errShuttingDown) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// perClient is MaxRequestsPerClient with its default; 0 for no bound.
func perClient(n int) int {
	switch {
	case n == 0:
		return DefaultMaxRequestsPerClient
	case n < 0:
		return 0
	}
	return n
}

// limitRequests answers 503 to a request that arrives while max are being
// handled, and 429 to one whose client has perClient of them (0: no such
// bound; a request forwarded by a peer is not counted), rather than
// queueing it: a client told to retry costs nothing, a queued one holds
// its goroutine and body.
func limitRequests(h http.Handler, max, perClient int, peers *Peers) http.Handler {
	slots := make(chan struct{}, max)
	var mu sync.Mutex
	byClient := map[string]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if perClient > 0 && !peers.forwardedByPeer(r) {
			client := ClientOf(r)
			mu.Lock()
			n := byClient[client]
			if n < perClient {
				byClient[client] = n + 1
			}
			mu.Unlock()
			if n >= perClient {
				w.Header().Set("Retry-After", "1")
				writeProblem(w, problem(http.StatusTooManyRequests, "this client has %d requests in progress, the most one client may have at once; retry when one has ended", perClient))
				return
			}
			defer func() {
				mu.Lock()
				if byClient[client]--; byClient[client] <= 0 {
					delete(byClient, client)
				}
				mu.Unlock()
			}()
		}
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

// ClientOf tells clients apart for the per-client bounds: by the
// connection's remote address without its port, and an IPv6 address by its
// /64, the least a site is given (one host picks any address of its /64 at
// will). Headers such as X-Forwarded-For are not trusted: the client
// chooses them.
func ClientOf(r *http.Request) string {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		a := ap.Addr().Unmap()
		if a.Is6() {
			return netip.PrefixFrom(a.WithZone(""), 64).Masked().String()
		}
		return a.String()
	}
	return r.RemoteAddr
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
