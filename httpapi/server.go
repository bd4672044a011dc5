package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Health reports whether the service is ready to serve: joined its groups,
// restored its partitions, and making progress.
type Health interface {
	// Readiness returns nil when ready, else why not (naming the stage).
	Readiness() error
}

// Mounter is what Config.Resources holds: a *Resource of any aggregate.
type Mounter interface {
	// mount serves the routes on mux with the API's settings.
	mount(mux *http.ServeMux, cfg *Config)
}

// Config assembles the API.
type Config struct {
	// Resources are the aggregates the API serves, one Resource each
	// (see Handle).
	Resources []Mounter
	// WriteTimeout bounds a write's wait for Kafka and for its outcome
	// (DefaultWriteWait when not set).
	WriteTimeout time.Duration
	// Peers forwards reads to other instances (nil: this one only).
	Peers *Peers
	// Partitions is the partition count of every topic, for telling
	// when some partition has no owner.
	Partitions int
	// Metadata describes the cluster for GET /metadata.
	Metadata func() any
	Health   Health
	Logger   *slog.Logger
	// Observe, when set, is told of every request: its route pattern,
	// status, duration and whether it was forwarded (metrics).
	Observe func(route string, status int, took time.Duration, forwarded bool)
	// Extra handlers mounted as they are, such as /metrics.
	Extra map[string]http.Handler
	// AllowedHosts, when not empty, are the only hosts (the Host header
	// without port, compared case-insensitively; "*" for any) the API
	// answers; any other gets 421 Misdirected Request. This keeps a page
	// on another origin that resolves to this service (DNS rebinding)
	// from reaching it. /healthz and /readyz answer any host. See
	// DefaultAllowedHosts.
	AllowedHosts []string
	// Access is who may do what (authentication and roles).
	Access Access
	// AdminListener moves the operator endpoints (OperatorPaths) off
	// this handler, to the one NewAdmin returns (ADMIN_ADDR).
	AdminListener bool
}

// Handle adds res to the resources the API serves: one call per
// aggregate.
func (cfg *Config) Handle(res Mounter) { cfg.Resources = append(cfg.Resources, res) }

// New returns the API's handler. It panics on a resource that lacks what
// it needs to be served, or on two that would serve the same path.
func New(cfg Config) http.Handler {
	mux := http.NewServeMux()
	for _, res := range cfg.Resources {
		res.mount(mux, &cfg)
	}
	routeProbes(mux, cfg)
	if !cfg.AdminListener {
		routeOperator(mux, cfg)
	}
	for pattern, h := range cfg.Extra {
		if !isOperatorPattern(pattern) {
			mux.Handle(pattern, h)
		}
	}
	mux.HandleFunc("/", unmatched(mux))
	return wrap(cfg, mux)
}

// wrap puts the checks every request goes through around h: recovery,
// logging and metrics, Host, forwarding proof, then access.
func wrap(cfg Config, h http.Handler) http.Handler {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return recoverer(log, logRequests(log, cfg.Observe, checkHost(cfg.AllowedHosts, checkForwarded(cfg.Peers, authorize(cfg.Access, notePattern(h))))))
}

// routeKey is the context key of the *string that logRequests reads the
// matched route pattern from.
type routeKey struct{}

// notePattern runs h (the ServeMux) and hands the pattern it matched back
// to logRequests: the checks between them pass the mux a copy of the
// request (WithContext), and the mux sets Pattern on that copy only.
func notePattern(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if route, ok := r.Context().Value(routeKey{}).(*string); ok {
			*route = r.Pattern
		}
	})
}

// NewAdmin returns the handler of the operator listener (ADMIN_ADDR): the
// operator endpoints, which New then leaves out (AdminListener), and the
// probes. The same access policy applies: with authentication on, the
// operator endpoints need the admin role there too.
func NewAdmin(cfg Config) http.Handler {
	mux := http.NewServeMux()
	routeProbes(mux, cfg)
	routeOperator(mux, cfg)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problem(http.StatusNotFound, "no resource at %s %s on the operator listener (it serves %s, /healthz and /readyz)", quoted(r.Method), quoted(r.URL.Path), strings.Join(OperatorPaths, ", ")))
	})
	return wrap(cfg, mux)
}

// routeOperator mounts the operator endpoints: /metadata and the extra
// handlers on OperatorPaths (/metrics).
func routeOperator(mux *http.ServeMux, cfg Config) {
	if cfg.Metadata != nil {
		mux.HandleFunc("GET /metadata", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, cfg.Metadata())
		})
	}
	for pattern, h := range cfg.Extra {
		if isOperatorPattern(pattern) {
			mux.Handle(pattern, h)
		}
	}
}

// isOperatorPattern reports whether a ServeMux pattern ("GET /metrics")
// serves one of OperatorPaths.
func isOperatorPattern(pattern string) bool {
	_, path, ok := strings.Cut(pattern, " ")
	if !ok {
		path = pattern
	}
	return isOperatorPath(path)
}

// unmatched answers a request no route serves: 405 with the methods the path
// allows, if any, else 404. Routes that share a pattern across
// subresources call it for the paths they do not serve.
func unmatched(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			if m == r.Method {
				continue // what brought the request here does not serve it
			}
			probe := r.Clone(r.Context())
			probe.Method = m
			h, pattern := mux.Handler(probe)
			if narrow, ok := h.(narrowRoute); pattern == "/" || ok && !narrow.serves(probe) {
				continue
			}
			allow = append(allow, m)
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, problem(http.StatusMethodNotAllowed, "%s is not allowed on %s; allowed: %s", quoted(r.Method), quoted(r.URL.Path), strings.Join(allow, ", ")))
			return
		}
		writeProblem(w, problem(http.StatusNotFound, "no resource at %s %s", quoted(r.Method), quoted(r.URL.Path)))
	}
}

// narrowRoute is a handler mounted on a pattern wider than the paths it
// serves (one pattern where several would conflict in a ServeMux), so that
// unmatched does not offer its method for a path it would answer 404.
type narrowRoute struct {
	handler http.HandlerFunc
	// serves reports whether the route answers r's path; r's PathValues
	// are not set.
	serves func(r *http.Request) bool
}

func (n narrowRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) { n.handler(w, r) }

// routeProbes mounts /healthz and /readyz.
func routeProbes(mux *http.ServeMux, cfg Config) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := cfg.Health.Readiness(); err != nil {
			w.Header().Set("Retry-After", "1")
			writeProblem(w, problem(http.StatusServiceUnavailable, "not ready: %v", err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer's Flush (server-sent
// events need it).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func logRequests(log *slog.Logger, observe func(string, int, time.Duration, bool), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		var route string
		if observe != nil {
			r = r.WithContext(context.WithValue(r.Context(), routeKey{}, &route))
		}
		next.ServeHTTP(rec, r)
		took := time.Since(start)
		if observe != nil {
			observe(route, rec.status, took, w.Header().Get("X-Catalog-Served-By") != "")
		}
		log.Debug("http request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "took", took)
	})
}

func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeProblem(w, problem(http.StatusInternalServerError, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
