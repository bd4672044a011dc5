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
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       or(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      or(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       or(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
	}
	if srv.MaxHeaderBytes <= 0 {
		srv.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.Logger != nil {
		srv.ErrorLog = slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)
	}
	return srv
}

// LimitListener returns a listener that has at most max connections open at
// once: Accept waits while max are open, until one is closed (or the
// listener is), leaving the clients beyond max in the kernel's backlog
// rather than in the process's memory. max < 1 means no limit: ln itself.
func LimitListener(ln net.Listener, max int) net.Listener {
	if max < 1 {
		return ln
	}
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	// slots holds a token per open connection.
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
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
	releaseOnce sync.Once
	release     func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.releaseOnce.Do(c.release)
	return err
}
