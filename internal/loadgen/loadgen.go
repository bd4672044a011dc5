// Package loadgen drives a running catalog service (or a cluster of them)
// with concurrent clients and reports throughput and latency: the load
// generator behind docs/performance.md, run as `catalog loadgen`.
//
// Modes:
//
//   - ModeHTTP writes through the HTTP API, each write waiting for its
//     outcome as the API does: POST /authors creating unique authors,
//     optionally mixed with PUT /authors/{code} updates of authors the same
//     client created (Options.Mix), round-robin over Options.URLs.
//   - ModeHTTPRead reads GET /authors/{code}: of Options.Seed authors it
//     creates first (not measured), or, with Seed 0, of authors it lists.
//   - ModeKafka skips HTTP: it produces commands straight to the commands
//     topic ({service}.authors.commands), Avro-encoded and with the headers
//     the service's gateway writes (msgId, type), and matches their outcomes
//     on the results topic (read_committed) by msgId. Latency runs from the
//     start of the produce to the outcome seen.
//
// A run has Options.Clients concurrent clients and ends after Options.Count
// requests or Options.Duration, whichever comes first; it is always bounded
// in time (a count alone is capped by DefaultMaxDuration). Without a rate
// each client sends its next request when the previous one is done (closed
// loop). With Options.Rate the requests are scheduled at fixed times,
// start + i/rate (open loop), whatever the answers do, and a request's
// latency runs from its scheduled time, not from when a client got round to
// it: a slow server then shows up in the latency instead of silently
// lowering the load (coordinated omission).
//
// Latency percentiles come from a log-linear (HdrHistogram-like) histogram
// of the successful requests, precise to 0.4% with fixed memory; the maximum
// and minimum are exact. Errors are counted by kind: the HTTP status
// ("409 Conflict"), the rejection code on the Kafka path ("rejected:
// already_exists"), "timeout" (Options.Timeout), or a transport error class
// ("connection refused").
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bookscatalog/catalog/kafkasec"
)

// Modes of a run.
const (
	ModeHTTP     = "http"
	ModeHTTPRead = "http-read"
	ModeKafka    = "kafka"
)

// Defaults and limits of Options.
const (
	DefaultURL      = "http://localhost:9081"
	DefaultBroker   = "localhost:9092"
	DefaultService  = "catalog"
	DefaultClients  = 64
	DefaultDuration = 10 * time.Second
	// DefaultMaxDuration bounds a run given only a count.
	DefaultMaxDuration = 10 * time.Minute
	DefaultTimeout     = 10 * time.Second
	DefaultSeed        = 1000
	DefaultProgress    = 5 * time.Second
	MaxClients         = 10000
	// MaxDuration bounds every run.
	MaxDuration = 24 * time.Hour
	// MaxSeed bounds the authors a read run creates or lists first.
	MaxSeed = 1000000
)

// Mix is the proportion of creates to updates of a write run: each client
// repeats Create creates then Update updates of the authors it just created.
type Mix struct {
	Create int `json:"create"`
	Update int `json:"update"`
}

func (m Mix) String() string { return fmt.Sprintf("create=%d,update=%d", m.Create, m.Update) }

// ParseMix parses "create=1,update=3" (either part may be left out: a
// missing create counts 1, a missing update 0).
func ParseMix(s string) (Mix, error) {
	m := Mix{Create: 1}
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Mix{}, fmt.Errorf("mix %q: want create=N,update=M", s)
		}
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != v {
			return Mix{}, fmt.Errorf("mix %q: %s=%q is not a non-negative integer", s, k, v)
		}
		if seen[k] {
			return Mix{}, fmt.Errorf("mix %q: %s given twice", s, k)
		}
		seen[k] = true
		switch k {
		case "create":
			m.Create = n
		case "update":
			m.Update = n
		default:
			return Mix{}, fmt.Errorf("mix %q: unknown operation %q (want create, update)", s, k)
		}
	}
	if m.Create < 1 {
		return Mix{}, fmt.Errorf("mix %q: create must be at least 1 (updates need authors)", s)
	}
	if m.Create+m.Update > 1000000 {
		return Mix{}, fmt.Errorf("mix %q: too large", s)
	}
	return m, nil
}

// Options describe a run. The zero value of a field means its default.
type Options struct {
	// Mode is ModeHTTP (default), ModeHTTPRead or ModeKafka.
	Mode string
	// URLs are the base URLs of the HTTP modes, used round-robin
	// (default DefaultURL).
	URLs []string
	// Brokers and Service locate the topics of ModeKafka (defaults
	// DefaultBroker, DefaultService).
	Brokers []string
	Service string
	// Kafka is the security of ModeKafka's clients (TLS, SASL).
	Kafka kafkasec.Config
	// Clients is the number of concurrent clients (default 64).
	Clients int
	// Count bounds the number of requests; Duration the time. With
	// neither, the run lasts DefaultDuration; with only Count, at most
	// DefaultMaxDuration.
	Count    int64
	Duration time.Duration
	// Rate, if positive, schedules requests at this overall rate per
	// second (open loop); else clients go as fast as answers come.
	Rate float64
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// Token, when set, is sent as "Authorization: Bearer <Token>" by the
	// HTTP modes (a service with authentication on).
	Token string
	// Mix is the write mix of ModeHTTP and ModeKafka (default creates
	// only).
	Mix Mix
	// Seed is the number of authors ModeHTTPRead creates before it
	// measures (default DefaultSeed); negative means none: it lists the
	// existing authors instead (up to MaxSeed).
	Seed int
	// Format is the report's format on out: "text" (default) or "json".
	Format string
	// Progress receives a progress line every ProgressEvery (default 5s)
	// while the run goes on; nil for none.
	Progress      io.Writer
	ProgressEvery time.Duration
	// Prefix starts the code of every author a run creates (default
	// "lg-" and a random run id), so that runs never collide.
	Prefix string
}

// normalize fills in the defaults and checks the options.
func (o *Options) normalize() error {
	if o.Mode == "" {
		o.Mode = ModeHTTP
	}
	switch o.Mode {
	case ModeHTTP, ModeHTTPRead, ModeKafka:
	default:
		return fmt.Errorf("mode %q: want %s, %s or %s", o.Mode, ModeHTTP, ModeHTTPRead, ModeKafka)
	}
	if len(o.URLs) == 0 {
		o.URLs = []string{DefaultURL}
	}
	for i, u := range o.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || (p.Path != "" && p.Path != "/") || p.RawQuery != "" {
			return fmt.Errorf("url %q: want a base URL such as %s", u, DefaultURL)
		}
		o.URLs[i] = strings.TrimSuffix(u, "/")
	}
	if len(o.Brokers) == 0 {
		o.Brokers = []string{DefaultBroker}
	}
	for _, b := range o.Brokers {
		if b == "" || !strings.Contains(b, ":") {
			return fmt.Errorf("broker %q: want host:port", b)
		}
	}
	if o.Service == "" {
		o.Service = DefaultService
	}
	switch {
	case o.Clients == 0:
		o.Clients = DefaultClients
	case o.Clients < 0 || o.Clients > MaxClients:
		return fmt.Errorf("clients %d: want 1 to %d", o.Clients, MaxClients)
	}
	if o.Count < 0 {
		return fmt.Errorf("count %d: must not be negative", o.Count)
	}
	switch {
	case o.Duration < 0:
		return fmt.Errorf("duration %s: must not be negative", o.Duration)
	case o.Duration > MaxDuration:
		return fmt.Errorf("duration %s: at most %s", o.Duration, MaxDuration)
	case o.Duration == 0 && o.Count == 0:
		o.Duration = DefaultDuration
	case o.Duration == 0:
		o.Duration = DefaultMaxDuration
	}
	if o.Rate < 0 || o.Rate > 1e7 {
		return fmt.Errorf("rate %g: want 0 (as fast as possible) to 10000000 per second", o.Rate)
	}
	switch {
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	case o.Timeout < 0:
		return fmt.Errorf("timeout %s: must be positive", o.Timeout)
	}
	if o.Mix == (Mix{}) {
		o.Mix = Mix{Create: 1}
	}
	if o.Mix.Create < 1 || o.Mix.Update < 0 {
		return fmt.Errorf("mix %s: want create >= 1 and update >= 0", o.Mix)
	}
	if o.Mode == ModeHTTPRead && o.Mix != (Mix{Create: 1}) {
		return fmt.Errorf("mix %s: only for write modes (%s, %s)", o.Mix, ModeHTTP, ModeKafka)
	}
	switch {
	case o.Seed == 0:
		o.Seed = DefaultSeed
	case o.Seed > MaxSeed:
		return fmt.Errorf("seed %d: at most %d", o.Seed, MaxSeed)
	}
	if o.Format == "" {
		o.Format = "text"
	}
	if o.Format != "text" && o.Format != "json" {
		return fmt.Errorf("format %q: want text or json", o.Format)
	}
	switch {
	case o.ProgressEvery == 0:
		o.ProgressEvery = DefaultProgress
	case o.ProgressEvery < 0:
		o.Progress = nil
	}
	if o.Prefix == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.Prefix = "lg-" + hex.EncodeToString(b[:])
	}
	return nil
}

// Report is the result of a run.
type Report struct {
	Mode    string   `json:"mode"`
	Targets []string `json:"targets"`
	Clients int      `json:"clients"`
	// Rate is the scheduled rate (0: closed loop).
	Rate float64 `json:"rate"`
	// Mix is the write mix of the write modes.
	Mix *Mix `json:"mix,omitempty"`
	// Seeded is the number of authors a read run created or listed
	// before it started measuring.
	Seeded int `json:"seeded,omitempty"`
	// Requests counts finished requests; Successes those that got the
	// expected answer; Errors the others.
	Requests  int64 `json:"requests"`
	Successes int64 `json:"successes"`
	Errors    int64 `json:"errors"`
	// ErrorKinds count the errors by kind, most frequent first.
	ErrorKinds []ErrorKind `json:"errorKinds"`
	// Ops count requests and errors by operation (create, update, read).
	Ops map[string]OpCounts `json:"ops"`
	// DurationSeconds runs from the start to the end of the last request.
	DurationSeconds float64 `json:"durationSeconds"`
	// Throughput is Requests per second of Duration.
	Throughput float64 `json:"throughput"`
	// Latency is that of the successful requests, in milliseconds.
	Latency Latency `json:"latencyMs"`
	// Interrupted is set when the run was stopped before its end.
	Interrupted bool `json:"interrupted,omitempty"`
}

// ErrorKind counts the errors of one kind.
type ErrorKind struct {
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
}

// OpCounts count the requests of one operation.
type OpCounts struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
}

// Latency summarises latencies, in milliseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// driver sends the requests of one mode.
type driver interface {
	// client returns the state of client number id.
	client(id int) client
	close()
}

// client sends requests one at a time.
type client interface {
	// do sends request number i and returns its operation and, if it
	// failed, its error kind.
	do(ctx context.Context, i int64) (op, errKind string)
}

// Run drives the targets of opts until the run's count or duration is
// reached or ctx is done, writes the report to out (if not nil) in
// opts.Format, and returns it. An error means the run could not start or
// the report could not be written; failing requests are counted, not
// returned. When ctx ends the run early, the report covers what was done
// and has Interrupted set.
func Run(ctx context.Context, opts Options, out io.Writer) (Report, error) {
	if err := opts.normalize(); err != nil {
		return Report{}, err
	}
	var d driver
	rep := Report{Mode: opts.Mode, Clients: opts.Clients, Rate: opts.Rate}
	switch opts.Mode {
	case ModeHTTP, ModeHTTPRead:
		rep.Targets = opts.URLs
		hd, err := newHTTPDriver(ctx, &opts)
		if err != nil {
			return Report{}, err
		}
		defer hd.close()
		if opts.Mode == ModeHTTPRead {
			if err := hd.prepareReads(ctx, &opts); err != nil {
				return Report{}, err
			}
			rep.Seeded = len(hd.keys)
		}
		d = hd
	case ModeKafka:
		rep.Targets = opts.Brokers
		kd, err := newKafkaDriver(ctx, &opts)
		if err != nil {
			return Report{}, err
		}
		defer kd.close()
		d = kd
	}
	if opts.Mode != ModeHTTPRead {
		m := opts.Mix
		rep.Mix = &m
	}
	st, elapsed, interrupted := drive(ctx, &opts, d)
	rep.Requests = st.requests.Load()
	rep.Successes = st.successes.Load()
	rep.Errors = st.errorCount()
	rep.ErrorKinds = st.errorKinds()
	rep.Ops = st.opCounts()
	rep.DurationSeconds = elapsed.Seconds()
	if elapsed > 0 {
		rep.Throughput = float64(rep.Requests) / elapsed.Seconds()
	}
	rep.Latency = latencyOf(st.lat.snapshot())
	rep.Interrupted = interrupted
	if out != nil {
		if err := WriteReport(out, rep, opts.Format); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// schedule is the open-loop timetable of a run: request i is due at
// start + i/rate, computed from i (not by adding intervals) so that it
// never drifts.
type schedule struct {
	start time.Time
	rate  float64
}

func (s schedule) at(i int64) time.Time {
	return s.start.Add(time.Duration(float64(i) * float64(time.Second) / s.rate))
}

// drive runs the clients of d until the count or duration is reached or
// ctx is done, and returns the statistics and the time from the start to
// the end of the last request.
func drive(ctx context.Context, opts *Options, d driver) (st *stats, elapsed time.Duration, interrupted bool) {
	st = newStats()
	start := time.Now()
	deadline := start.Add(opts.Duration)
	sched := schedule{start: start, rate: opts.Rate}
	var tickets atomic.Int64
	var wg sync.WaitGroup
	stopProgress := startProgress(opts, st, start)
	for id := range opts.Clients {
		c := d.client(id)
		wg.Go(func() {
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for ctx.Err() == nil {
				i := tickets.Add(1) - 1
				if opts.Count > 0 && i >= opts.Count {
					return
				}
				var from time.Time
				if opts.Rate > 0 {
					from = sched.at(i)
					if !from.Before(deadline) {
						return
					}
					if wait := time.Until(from); wait > 0 {
						timer.Reset(wait)
						select {
						case <-timer.C:
						case <-ctx.Done():
							return
						}
					}
				} else {
					from = time.Now()
					if !from.Before(deadline) {
						return
					}
				}
				rctx, cancel := context.WithTimeout(ctx, opts.Timeout)
				op, kind := c.do(rctx, i)
				cancel()
				end := time.Now()
				if kind != "" && ctx.Err() != nil {
					return // cut short by the interruption: not counted
				}
				st.add(op, kind, end.Sub(from))
			}
		})
	}
	wg.Wait()
	elapsed = time.Since(start)
	stopProgress()
	return st, elapsed, ctx.Err() != nil
}

// startProgress writes a progress line every opts.ProgressEvery until the
// returned function is called.
func startProgress(opts *Options, st *stats, start time.Time) (stop func()) {
	if opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(opts.ProgressEvery)
		defer tick.Stop()
		prev, prevReq, prevAt := st.lat.snapshot(), int64(0), start
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				cur, req := st.lat.snapshot(), st.requests.Load()
				iv := cur.since(prev)
				rate := float64(req-prevReq) / now.Sub(prevAt).Seconds()
				fmt.Fprintf(opts.Progress, "loadgen: %5.1fs  requests %d  errors %d  last %s: %.0f req/s  p50 %s  p99 %s  max %s\n",
					now.Sub(start).Seconds(), req, st.errorCount(), opts.ProgressEvery, rate,
					fmtMS(ms(iv.quantile(0.5))), fmtMS(ms(iv.quantile(0.99))), fmtMS(ms(time.Duration(iv.max))))
				prev, prevReq, prevAt = cur, req, now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// errKind classifies a transport error.
func errKind(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed (EOF)"
	}
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "broken pipe", "no such host", "too many open files", "i/o timeout"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return "transport: " + trim(s, 80)
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
