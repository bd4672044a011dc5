package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// --- statistics ---

func TestBuckets(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 1e6, 123456789, 1e12, math.MaxInt64 / 3, math.MaxInt64} {
		i := bucketOf(v)
		if i < 0 || i >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of [0, %d)", v, i, nBuckets)
		}
		if i < prev {
			t.Fatalf("bucketOf(%d) = %d, below the bucket of a smaller value (%d)", v, i, prev)
		}
		prev = i
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("bucket %d of %d spans [%d, %d]", i, v, lo, hi)
		}
		if v >= 256 && float64(hi-lo+1)/float64(lo) > 1.0/128+1e-12 {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/128 of its values", i, lo, hi)
		}
	}
	// Buckets tile the values: each starts where the previous ended.
	for i := 1; i < nBuckets; i++ {
		_, hi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != hi+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, hi)
		}
	}
}

// near reports whether got is within 0.5% of want.
func near(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= 0.005*float64(want)
}

func TestPercentilesOfKnownSamples(t *testing.T) {
	h := newHistogram()
	// 1ms..1000ms, shuffled by a stride coprime to 1000.
	for i := range 1000 {
		h.record(time.Duration((i*7919)%1000+1) * time.Millisecond)
	}
	s := h.snapshot()
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.999, 999 * time.Millisecond}, {1, 1000 * time.Millisecond}} {
		if got := s.quantile(c.q); !near(got, c.want) {
			t.Errorf("p%g = %s, want %s (±0.5%%)", c.q*100, got, c.want)
		}
	}
	if s.n != 1000 || s.min != int64(time.Millisecond) || s.max != int64(time.Second) {
		t.Errorf("n, min, max = %d, %d, %d", s.n, s.min, s.max)
	}
	if got := s.mean(); got != 500500*time.Microsecond {
		t.Errorf("mean = %s, want 500.5ms", got)
	}
	l := latencyOf(s)
	if l.Max != 1000 || l.Min != 1 || math.Abs(l.P99-990) > 5 {
		t.Errorf("latency summary %+v", l)
	}
}

func TestPercentilesOutlier(t *testing.T) {
	h := newHistogram()
	for range 99 {
		h.record(10 * time.Millisecond)
	}
	h.record(time.Second)
	s := h.snapshot()
	// Exact values are reported exactly when a bucket holds one value
	// only (clamped to min and max).
	if got := s.quantile(0.5); got != 10*time.Millisecond {
		t.Errorf("p50 = %s", got)
	}
	if got := s.quantile(0.99); got != 10*time.Millisecond {
		t.Errorf("p99 = %s (99 of 100 samples are 10ms)", got)
	}
	if got := s.quantile(0.999); got != time.Second {
		t.Errorf("p99.9 = %s, want the outlier", got)
	}
	if got := newHistogram().snapshot().quantile(0.99); got != 0 {
		t.Errorf("p99 of nothing = %s", got)
	}
	h.record(-time.Second) // clock oddities count as zero
	if got := h.snapshot().quantile(0); got != 0 {
		t.Errorf("min after a negative sample = %s", got)
	}
}

func TestSnapshotSince(t *testing.T) {
	h := newHistogram()
	for range 100 {
		h.record(time.Millisecond)
	}
	before := h.snapshot()
	for range 10 {
		h.record(100 * time.Millisecond)
	}
	iv := h.snapshot().since(before)
	if iv.n != 10 || !near(iv.quantile(0.5), 100*time.Millisecond) {
		t.Fatalf("interval n=%d p50=%s, want 10 samples of 100ms", iv.n, iv.quantile(0.5))
	}
}

func TestConcurrentRecording(t *testing.T) {
	st := newStats()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				kind := ""
				if i%100 == 0 {
					kind = "500 Internal Server Error"
				}
				st.add([]string{"create", "update"}[g%2], kind, time.Duration(i)*time.Microsecond)
			}
		})
	}
	wg.Wait()
	if st.requests.Load() != 8000 || st.successes.Load() != 7920 || st.errorCount() != 80 {
		t.Fatalf("requests %d successes %d errors %d", st.requests.Load(), st.successes.Load(), st.errorCount())
	}
	if k := st.errorKinds(); len(k) != 1 || k[0].Count != 80 {
		t.Fatalf("error kinds %v", k)
	}
	if ops := st.opCounts(); ops["create"].Requests != 4000 || ops["update"].Errors != 40 {
		t.Fatalf("ops %v", ops)
	}
	if n := st.lat.snapshot().n; n != 7920 {
		t.Fatalf("histogram has %d samples, want the 7920 successes", n)
	}
}

// --- the open-loop schedule ---

func TestScheduleIsExactAndDoesNotDrift(t *testing.T) {
	start := time.Unix(1000, 0)
	s := schedule{start: start, rate: 1000}
	for _, i := range []int64{0, 1, 999, 1000, 123456} {
		if got, want := s.at(i).Sub(start), time.Duration(i)*time.Millisecond; got != want {
			t.Errorf("rate 1000: request %d at +%s, want +%s", i, got, want)
		}
	}
	// An interval that is no whole number of nanoseconds (1/3 s) must
	// not accumulate rounding: request 3n is due at exactly n seconds.
	s = schedule{start: start, rate: 3}
	if got := s.at(3_000_000).Sub(start); got != 1_000_000*time.Second {
		t.Errorf("rate 3: request 3e6 at +%s, want +1e6s", got)
	}
	if got := s.at(1).Sub(start); got != 333333333*time.Nanosecond {
		t.Errorf("rate 3: request 1 at +%s", got)
	}
}

func TestRateIsHeld(t *testing.T) {
	emu := newEmulator()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	rep, err := Run(context.Background(), Options{URLs: []string{srv.URL}, Clients: 4, Count: 100, Rate: 200, ProgressEvery: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Request 99 is not sent before it is due, 99/200 s after the start.
	if rep.Requests != 100 || rep.Errors != 0 || rep.DurationSeconds < 99.0/200 {
		t.Fatalf("requests %d errors %d in %.3fs, want 100 in at least 0.495s", rep.Requests, rep.Errors, rep.DurationSeconds)
	}
	if rep.Rate != 200 {
		t.Fatalf("report rate %g", rep.Rate)
	}
}

// With a rate, latency runs from the scheduled time: one stalled answer
// delays every request queued behind it, and that shows.
func TestOpenLoopMeasuresFromScheduledTime(t *testing.T) {
	emu := newEmulator()
	var first atomic.Bool
	emu.hook = func(r *http.Request) int {
		if r.Method == http.MethodPost && first.CompareAndSwap(false, true) {
			time.Sleep(300 * time.Millisecond)
		}
		return 0
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	// One client at 100/s: request i is due at i*10ms but cannot start
	// before 300ms, so its latency is at least 300ms - i*10ms.
	rep, err := Run(context.Background(), Options{URLs: []string{srv.URL}, Clients: 1, Count: 50, Rate: 100, ProgressEvery: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Latency.Max < 300 || rep.Latency.P90 < 240 {
		t.Fatalf("errors %d, latency %+v: want max >= 300ms and p90 >= 240ms", rep.Errors, rep.Latency)
	}
}

// --- the HTTP modes against an emulator ---

// emulator answers like the catalog's author API, in memory.
type emulator struct {
	mu      sync.Mutex
	authors map[string]int64 // code -> version
	calls   map[string]int   // "METHOD host" -> count
	// hook, if set, runs first; a non-zero status is answered instead.
	hook  func(*http.Request) int
	ready atomic.Int32 // status of /readyz; 0 means 200
}

func newEmulator() *emulator {
	return &emulator{authors: map[string]int64{}, calls: map[string]int{}}
}

func (e *emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/readyz" {
		if s := e.ready.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	e.mu.Lock()
	e.calls[r.Method+" "+r.Host]++
	e.mu.Unlock()
	if e.hook != nil {
		if s := e.hook(r); s != 0 {
			http.Error(w, "injected", s)
			return
		}
	}
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	var body struct {
		Code, FirstName, LastName *string
	}
	code := strings.TrimPrefix(r.URL.Path, "/authors/")
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/authors":
		if r.Header.Get("Content-Type") != "application/json" {
			answer(http.StatusUnsupportedMediaType, nil)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Code == nil || body.FirstName == nil || body.LastName == nil {
			answer(http.StatusUnprocessableEntity, nil)
			return
		}
		if _, ok := e.authors[*body.Code]; ok {
			answer(http.StatusConflict, map[string]string{"title": "exists"})
			return
		}
		e.authors[*body.Code] = 1
		answer(http.StatusCreated, map[string]any{"code": *body.Code, "version": 1})
	case r.Method == http.MethodPut && code != r.URL.Path:
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.FirstName == nil || body.LastName == nil {
			answer(http.StatusUnprocessableEntity, nil)
			return
		}
		v, ok := e.authors[code]
		if !ok {
			answer(http.StatusNotFound, nil)
			return
		}
		e.authors[code] = v + 1
		answer(http.StatusOK, map[string]any{"code": code, "version": v + 1})
	case r.Method == http.MethodGet && code != r.URL.Path:
		v, ok := e.authors[code]
		if !ok {
			answer(http.StatusNotFound, nil)
			return
		}
		answer(http.StatusOK, map[string]any{"code": code, "version": v})
	case r.Method == http.MethodGet && r.URL.Path == "/authors":
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		after := r.URL.Query().Get("after")
		keys := make([]string, 0, len(e.authors))
		for k := range e.authors {
			if k > after {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		page := map[string]any{"next": ""}
		if len(keys) > limit {
			keys = keys[:limit]
			page["next"] = keys[limit-1]
		}
		items := []map[string]any{}
		for _, k := range keys {
			items = append(items, map[string]any{"code": k, "version": e.authors[k]})
		}
		page["items"] = items
		answer(http.StatusOK, page)
	default:
		answer(http.StatusNotFound, nil)
	}
}

func (e *emulator) count(method string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for k, c := range e.calls {
		if strings.HasPrefix(k, method+" ") {
			n += c
		}
	}
	return n
}

func TestHTTPWritesWithMixAcrossURLs(t *testing.T) {
	emu := newEmulator()
	a, b := httptest.NewServer(emu), httptest.NewServer(emu)
	defer a.Close()
	defer b.Close()
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Options{
		URLs: []string{a.URL, b.URL + "/"}, Clients: 8, Count: 400, Mix: Mix{Create: 1, Update: 3},
		Progress: &syncWriter{w: &progress}, ProgressEvery: time.Hour,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 400 || rep.Successes != 400 || rep.Errors != 0 || len(rep.ErrorKinds) != 0 {
		t.Fatalf("report %+v", rep)
	}
	// Each client repeats a create and 3 updates of it, and stops where
	// the count ends, mid-cycle maybe.
	creates, updates := rep.Ops["create"].Requests, rep.Ops["update"].Requests
	if creates+updates != 400 || creates < 100 || creates > 100+8 {
		t.Fatalf("ops %v, want about 100 creates and 300 updates", rep.Ops)
	}
	if len(emu.authors) != int(creates) || emu.count("POST") != int(creates) || emu.count("PUT") != int(updates) {
		t.Fatalf("emulator saw %d authors, %d POST, %d PUT", len(emu.authors), emu.count("POST"), emu.count("PUT"))
	}
	var versions int64
	for code, v := range emu.authors {
		if v > 4 {
			t.Fatalf("author %s at version %d: more than 3 updates", code, v)
		}
		versions += v
	}
	if versions != 400 {
		t.Fatalf("versions add up to %d, want one per request", versions)
	}
	emu.mu.Lock()
	hostA, hostB := emu.calls["POST "+strings.TrimPrefix(a.URL, "http://")]+emu.calls["PUT "+strings.TrimPrefix(a.URL, "http://")],
		emu.calls["POST "+strings.TrimPrefix(b.URL, "http://")]+emu.calls["PUT "+strings.TrimPrefix(b.URL, "http://")]
	emu.mu.Unlock()
	if hostA != 200 || hostB != 200 {
		t.Fatalf("round robin: %d requests to the first URL, %d to the second", hostA, hostB)
	}
	if rep.Latency.P50 <= 0 || rep.Latency.Max < rep.Latency.P99 || rep.Throughput <= 0 {
		t.Fatalf("latency %+v throughput %g", rep.Latency, rep.Throughput)
	}
}

func TestHTTPErrorsAreCountedByKind(t *testing.T) {
	emu := newEmulator()
	var n atomic.Int64
	emu.hook = func(r *http.Request) int {
		switch i := n.Add(1); {
		case i%10 == 0:
			return http.StatusServiceUnavailable
		case i%10 == 5:
			time.Sleep(time.Second) // beyond the timeout
		}
		return 0
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	// A collision with an author created earlier is a 409.
	emu.authors["lg-fixed-1"] = 1
	rep, err := Run(context.Background(), Options{URLs: []string{srv.URL}, Clients: 4, Count: 100, Timeout: 250 * time.Millisecond, Prefix: "lg-fixed", ProgressEvery: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int64{}
	for _, k := range rep.ErrorKinds {
		kinds[k.Kind] = k.Count
	}
	if kinds["503 Service Unavailable"] != 10 || kinds["timeout"] != 10 || kinds["409 Conflict"] > 1 || rep.Errors != kinds["503 Service Unavailable"]+kinds["timeout"]+kinds["409 Conflict"] {
		t.Fatalf("errors %d by kind %v, want 10 of 503, 10 timeouts and at most one 409", rep.Errors, kinds)
	}
	if rep.Requests != 100 || rep.Successes != rep.Requests-rep.Errors {
		t.Fatalf("requests %d successes %d errors %d", rep.Requests, rep.Successes, rep.Errors)
	}
	// Latency is of the successes: no timeout in it.
	if rep.Latency.Max >= 250 {
		t.Fatalf("max latency %gms includes failed requests", rep.Latency.Max)
	}
}

func TestHTTPReadsOfSeededAuthors(t *testing.T) {
	emu := newEmulator()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	rep, err := Run(context.Background(), Options{Mode: ModeHTTPRead, URLs: []string{srv.URL}, Clients: 8, Count: 200, Seed: 50, ProgressEvery: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seeded != 50 || len(emu.authors) != 50 || rep.Requests != 200 || rep.Errors != 0 || rep.Ops["read"].Requests != 200 || rep.Mix != nil {
		t.Fatalf("seeded %d (emulator has %d), report %+v", rep.Seeded, len(emu.authors), rep)
	}
	if got := emu.count("GET"); got != 200 {
		t.Fatalf("emulator saw %d reads", got)
	}
}

func TestHTTPReadsOfListedAuthors(t *testing.T) {
	emu := newEmulator()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	_, err := Run(context.Background(), Options{Mode: ModeHTTPRead, URLs: []string{srv.URL}, Count: 10, Seed: -1, ProgressEvery: -1}, nil)
	if err == nil || !strings.Contains(err.Error(), "no authors to read") {
		t.Fatalf("reads of an empty catalog: %v", err)
	}
	for i := range 2500 {
		emu.authors[fmt.Sprintf("a-%05d", i)] = 1
	}
	rep, err := Run(context.Background(), Options{Mode: ModeHTTPRead, URLs: []string{srv.URL}, Clients: 4, Count: 100, Seed: -1, ProgressEvery: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seeded != 2500 || rep.Errors != 0 || rep.Requests != 100 || len(emu.authors) != 2500 {
		t.Fatalf("listed %d, report %+v", rep.Seeded, rep)
	}
}

func TestPreflight(t *testing.T) {
	emu := newEmulator()
	emu.ready.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(emu)
	_, err := Run(context.Background(), Options{URLs: []string{srv.URL}, Count: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "not ready") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("not ready: %v", err)
	}
	srv.Close()
	_, err = Run(context.Background(), Options{URLs: []string{srv.URL}, Count: 1, Timeout: time.Second}, nil)
	if err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("closed server: %v", err)
	}
	if emu.count("POST") != 0 {
		t.Fatal("requests sent to a target that failed its preflight")
	}
}

func TestDurationBoundAndInterruption(t *testing.T) {
	emu := newEmulator()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	start := time.Now()
	rep, err := Run(context.Background(), Options{URLs: []string{srv.URL}, Clients: 2, Duration: 200 * time.Millisecond, ProgressEvery: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests == 0 || rep.Errors != 0 || rep.DurationSeconds < 0.2 || time.Since(start) > 5*time.Second || rep.Interrupted {
		t.Fatalf("duration run: %+v", rep)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	rep, err = Run(ctx, Options{URLs: []string{srv.URL}, Clients: 2, Duration: time.Hour, ProgressEvery: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.Errors != 0 || rep.DurationSeconds > 5 {
		t.Fatalf("interrupted run: %+v", rep)
	}
}

func TestProgressLines(t *testing.T) {
	emu := newEmulator()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	var buf bytes.Buffer
	w := &syncWriter{w: &buf}
	if _, err := Run(context.Background(), Options{URLs: []string{srv.URL}, Clients: 2, Duration: 250 * time.Millisecond, Progress: w, ProgressEvery: 50 * time.Millisecond}, nil); err != nil {
		t.Fatal(err)
	}
	out := w.String()
	if n := strings.Count(out, "loadgen: "); n < 2 || !strings.Contains(out, "req/s") || !strings.Contains(out, "p99") {
		t.Fatalf("progress output:\n%s", out)
	}
}

// --- reports ---

func TestJSONReportShape(t *testing.T) {
	emu := newEmulator()
	emu.hook = func(r *http.Request) int {
		if r.Method == http.MethodPut {
			return http.StatusPreconditionFailed
		}
		return 0
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	var out bytes.Buffer
	rep, err := Run(context.Background(), Options{URLs: []string{srv.URL}, Clients: 1, Count: 20, Mix: Mix{Create: 1, Update: 1}, Format: "json", ProgressEvery: -1}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"clients", "durationSeconds", "errorKinds", "errors", "latencyMs", "mix", "mode", "ops", "rate", "requests", "successes", "targets", "throughput"}
	if !slices.Equal(keys, want) {
		t.Fatalf("report keys %v, want %v", keys, want)
	}
	lat := got["latencyMs"].(map[string]any)
	for _, k := range []string{"min", "mean", "p50", "p90", "p99", "p999", "max"} {
		if _, ok := lat[k].(float64); !ok {
			t.Fatalf("latencyMs.%s missing: %v", k, lat)
		}
	}
	kinds := got["errorKinds"].([]any)
	if len(kinds) != 1 || kinds[0].(map[string]any)["kind"] != "412 Precondition Failed" || kinds[0].(map[string]any)["count"] != 10.0 {
		t.Fatalf("errorKinds %v", kinds)
	}
	if got["requests"] != 20.0 || got["errors"] != 10.0 || got["mode"] != "http" || got["ops"].(map[string]any)["update"].(map[string]any)["errors"] != 10.0 {
		t.Fatalf("report %s", out.String())
	}
	var back Report
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back.Requests != rep.Requests || back.Latency != rep.Latency {
		t.Fatalf("report does not round-trip: %v", err)
	}
}

func TestTextReport(t *testing.T) {
	rep := Report{
		Mode: "http", Targets: []string{"http://a", "http://b"}, Clients: 64, Rate: 1000, Mix: &Mix{Create: 1, Update: 3},
		Requests: 30000, Successes: 29990, Errors: 10, ErrorKinds: []ErrorKind{{"504 Gateway Timeout", 10}},
		Ops:             map[string]OpCounts{"create": {Requests: 7500}, "update": {Requests: 22500, Errors: 10}},
		DurationSeconds: 30.01, Throughput: 999.7, Latency: Latency{P50: 3.2, P90: 5, P99: 12.5, P999: 40, Max: 120, Min: 0.9, Mean: 3.5},
	}
	var out bytes.Buffer
	if err := WriteReport(&out, rep, "text"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"http (create=1,update=3)", "http://a, http://b", "open loop at 1000 req/s", "30.01s",
		"30000 (create 7500, update 22500)", "504 Gateway Timeout", "999.7 req/s", "p50 3.20ms", "p99 12.5ms", "max 120ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
	if err := WriteReport(io.Discard, rep, "xml"); err == nil {
		t.Error("format xml accepted")
	}
}

// --- flags ---

func TestParseArgs(t *testing.T) {
	o, err := ParseArgs([]string{"-mode", "kafka", "-brokers", "h1:9092, h2:9092", "-service", "svc", "-clients", "8", "-n", "200",
		"-rate", "500", "-mix", "create=1,update=3", "-format", "json", "-timeout", "2s", "-progress", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Mode != ModeKafka || !slices.Equal(o.Brokers, []string{"h1:9092", "h2:9092"}) || o.Service != "svc" || o.Clients != 8 || o.Count != 200 ||
		o.Rate != 500 || o.Mix != (Mix{1, 3}) || o.Format != "json" || o.Timeout != 2*time.Second || o.ProgressEvery >= 0 {
		t.Fatalf("options %+v", o)
	}
	o, err = ParseArgs([]string{"-url", "http://a:1,http://b:2", "-updates-per-create", "2", "-duration", "30s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Mode != ModeHTTP || len(o.URLs) != 2 || o.Mix != (Mix{1, 2}) || o.Duration != 30*time.Second || o.Clients != 64 {
		t.Fatalf("options %+v", o)
	}
	o, err = ParseArgs([]string{"-mode", "http-read", "-seed", "0"}, io.Discard)
	if err != nil || o.Seed >= 0 {
		t.Fatalf("-seed 0: %+v, %v", o, err)
	}
	o, err = ParseArgs(nil, io.Discard)
	if err != nil || o.Mode != ModeHTTP || o.URLs[0] != DefaultURL || o.Mix != (Mix{Create: 1}) || o.Seed != DefaultSeed {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-mode", "grpc"}, `mode "grpc"`},
		{[]string{"-clients", "0"}, "-clients 0"},
		{[]string{"-clients", "100000"}, "clients 100000"},
		{[]string{"-n", "-1"}, "-n -1"},
		{[]string{"-n", "ten"}, "invalid value"},
		{[]string{"-duration", "0s"}, "-duration 0s"},
		{[]string{"-duration", "48h"}, "at most"},
		{[]string{"-duration", "soon"}, "invalid value"},
		{[]string{"-rate", "-5"}, "rate -5"},
		{[]string{"-timeout", "0s"}, "-timeout"},
		{[]string{"-url", "localhost:9081"}, `url "localhost:9081"`},
		{[]string{"-url", "http://h/authors"}, "base URL"},
		{[]string{"-url", ","}, "-url: empty"},
		{[]string{"-brokers", "localhost"}, `broker "localhost"`},
		{[]string{"-format", "yaml"}, `format "yaml"`},
		{[]string{"-mix", "create=1,update=x"}, "not a non-negative integer"},
		{[]string{"-mix", "create=0,update=3"}, "create must be at least 1"},
		{[]string{"-mix", "create=1,delete=3"}, `unknown operation "delete"`},
		{[]string{"-mix", "update"}, "want create=N,update=M"},
		{[]string{"-mix", "create=1", "-updates-per-create", "2"}, "give one"},
		{[]string{"-updates-per-create", "-1"}, "must not be negative"},
		{[]string{"-mode", "http-read", "-updates-per-create", "1"}, "write modes"},
		{[]string{"-seed", "-3"}, "-seed -3"},
		{[]string{"-nope"}, "not defined"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		_, err := ParseArgs(c.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseArgs(%q) = %v, want an error containing %q", c.args, err, c.want)
		}
	}
}

func TestParseMix(t *testing.T) {
	for s, want := range map[string]Mix{"create=1,update=3": {1, 3}, "update=2": {1, 2}, "create=2": {2, 0}, " create=2 , update=5 ": {2, 5}} {
		if got, err := ParseMix(s); err != nil || got != want {
			t.Errorf("ParseMix(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "create=1,create=2", "create=+1", "update=1.5", "create=1;update=2"} {
		if _, err := ParseMix(s); err == nil {
			t.Errorf("ParseMix(%q) accepted", s)
		}
	}
}

func TestMixer(t *testing.T) {
	m := mixer{mix: Mix{Create: 2, Update: 3}}
	var seq []string
	for i := range 10 {
		code := m.next()
		if code == "" {
			code = fmt.Sprintf("c%d", i)
			m.createdOK(code)
			seq = append(seq, "create "+code)
		} else {
			seq = append(seq, "update "+code)
		}
	}
	want := []string{"create c0", "create c1", "update c0", "update c1", "update c0", "create c5", "create c6", "update c5", "update c6", "update c5"}
	if !slices.Equal(seq, want) {
		t.Fatalf("sequence %v, want %v", seq, want)
	}
	// A failed create leaves nothing to update: the update becomes a create.
	m = mixer{mix: Mix{Create: 1, Update: 2}}
	for i := range 2 {
		if code := m.next(); code != "" {
			t.Fatalf("request %d updates %q, which was never created", i, code)
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// With a token, every request of the HTTP modes carries it: a service with
// authentication on can be driven.
func TestHTTPSendsTheToken(t *testing.T) {
	emu := newEmulator()
	emu.hook = func(r *http.Request) int {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			return http.StatusUnauthorized
		}
		return 0
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	rep, err := Run(context.Background(), Options{Mode: ModeHTTPRead, URLs: []string{srv.URL}, Clients: 2, Count: 20, Seed: 5, ProgressEvery: -1, Token: "s3cret"}, nil)
	if err != nil || rep.Errors != 0 || rep.Requests != 20 {
		t.Fatalf("with the token: %v %+v", err, rep)
	}
	rep, err = Run(context.Background(), Options{Mode: ModeHTTP, URLs: []string{srv.URL}, Clients: 1, Count: 3, ProgressEvery: -1}, nil)
	if err != nil || rep.Errors != 3 {
		t.Fatalf("without it the emulator refuses every write: %v %+v", err, rep)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := ParseArgs([]string{"-mode", "http-read", "-token-file", path}, io.Discard)
	if err != nil || opts.Token != "s3cret" {
		t.Fatalf("-token-file: %q %v", opts.Token, err)
	}
}
