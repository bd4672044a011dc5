package crashtest

// The write workload and its model. Each client writes a scripted sequence
// of operations per author, one at a time; an author's operations stop at the
// first one whose outcome is not a success, so an author's history is a
// prefix of acknowledged operations followed by at most one whose outcome is
// unknown (in flight at the kill, or answered 5xx). The model tells what the
// service must show for each author: the state after the acknowledged prefix,
// or after the prefix and the unknown operation.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/domain/author"
)

type opKind int

const (
	opCreate opKind = iota
	opUpdate
	opDelete
)

func (k opKind) String() string { return [...]string{"create", "update", "delete"}[k] }

type outcome int

const (
	notSent outcome = iota
	acked           // a 2xx answer
	unknown         // no answer, or a 5xx: applied or not
)

func (o outcome) String() string { return [...]string{"not-sent", "acked", "unknown"}[o] }

// op is one write of the script of an author.
type op struct {
	kind        opKind
	first, last string
	idemKey     string // Idempotency-Key, or "" for none
	outcome     outcome
	detail      string // what answered an op that was not acked
	retried     bool   // acked by a retry with the same Idempotency-Key after the restart
}

// authorRun is an author, its script, and what became of each write.
type authorRun struct {
	code   string
	client int
	ops    []*op
	// resolved is the number of ops the service shows applied, decided
	// by the read-back check: the acked prefix, or that plus the unknown op.
	resolved int
}

// newAuthorRun scripts the writes of one author: create, three updates,
// and for some authors a delete, a re-create and an update.
func newAuthorRun(code string, client int, idempotent, recreate bool) *authorRun {
	kinds := []opKind{opCreate, opUpdate, opUpdate, opUpdate}
	if recreate {
		kinds = append(kinds, opDelete, opCreate, opUpdate)
	}
	a := &authorRun{code: code, client: client}
	for i, k := range kinds {
		o := &op{kind: k, first: fmt.Sprintf("First%d", i), last: fmt.Sprintf("Last %s #%d", code, i)}
		if idempotent {
			o.idemKey = fmt.Sprintf("%s-op%d", code, i)
		}
		a.ops = append(a.ops, o)
	}
	return a
}

// ackedPrefix returns the number of leading acked ops, and the op after
// them if its outcome is unknown (else nil).
func (a *authorRun) ackedPrefix() (int, *op) {
	n := 0
	for n < len(a.ops) && a.ops[n].outcome == acked {
		n++
	}
	if n < len(a.ops) && a.ops[n].outcome == unknown {
		return n, a.ops[n]
	}
	return n, nil
}

func (o *op) event(code string) author.Event {
	switch o.kind {
	case opCreate:
		return author.AuthorCreated{Code: code, FirstName: o.first, LastName: o.last}
	case opUpdate:
		return author.AuthorUpdated{Code: code, FirstName: o.first, LastName: o.last}
	default:
		return author.AuthorDeleted{Code: code}
	}
}

// versionedEvent is an event with the version header the runtime gives it
// (the aggregate's version before it, plus one).
type versionedEvent struct {
	event   author.Event
	version int64
}

// expected returns the events of the first n ops and the state they fold
// to, by the domain's own Evolve.
func (a *authorRun) expected(n int) ([]versionedEvent, author.State) {
	var s author.State
	var evs []versionedEvent
	for _, o := range a.ops[:n] {
		e := o.event(a.code)
		evs = append(evs, versionedEvent{event: e, version: s.Version + 1})
		s = author.Evolve(s, e)
	}
	return evs, s
}

func (a *authorRun) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "author %s (client %d):", a.code, a.client)
	for i, o := range a.ops {
		if o.outcome == notSent {
			fmt.Fprintf(&b, " [%d %s: not sent]", i, o.kind)
			continue
		}
		fmt.Fprintf(&b, " [%d %s: %s", i, o.kind, o.outcome)
		if o.idemKey != "" {
			b.WriteString(", idempotent")
		}
		if o.retried {
			b.WriteString(", by a retry")
		}
		if o.detail != "" {
			fmt.Fprintf(&b, ", %s", o.detail)
		}
		b.WriteString("]")
	}
	return b.String()
}

// authorView is the JSON representation of an author, as httpapi
// renders it.
type authorView struct {
	Code      string `json:"code"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Version   int64  `json:"version"`
}

func viewOf(s author.State) authorView {
	return authorView{Code: s.Code, FirstName: s.FirstName, LastName: s.LastName, Version: s.Version}
}

// workload runs writer clients against one service URL and records every
// author and write.
type workload struct {
	t     *testing.T
	hc    *http.Client
	phase string // prefixes author codes

	mu      sync.Mutex
	authors []*authorRun
	statusN map[string]int // how non-acked writes were answered, for the report

	acked   atomic.Int64
	stopped atomic.Bool
}

func newWorkload(t *testing.T, phase string) *workload {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &workload{t: t, hc: &http.Client{Timeout: 20 * time.Second, Transport: tr}, phase: phase, statusN: map[string]int{}}
}

// clients is the number of concurrent writers.
const clients = 8

// load runs the clients against url until stop returns true (polled every
// 10ms, with the elapsed time and the count of acked writes), then tells
// the clients to stop, calls crash, and waits for the clients' last
// requests (which fail or succeed on their own). It returns how long the
// load ran.
func (w *workload) load(url string, stop func(elapsed time.Duration, acked int64) bool, crash func()) time.Duration {
	t := w.t
	t.Helper()
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() { w.client(url, c) })
	}
	for !stop(time.Since(start), w.acked.Load()) {
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	// Stopped first, so that no client starts a new write against the
	// dead process (each would fail at once, and many would pile up as
	// unknown writes); the writes in flight now are cut off by the crash.
	w.stopped.Store(true)
	crash()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("clients did not finish within 60s of the crash")
	}
	return took
}

// client writes authors one after the other until stopped. Odd clients
// send an Idempotency-Key with every write (and send every acked write a
// second time, which must answer the same); every third author is
// deleted and created again.
func (w *workload) client(url string, c int) {
	for j := 0; !w.stopped.Load() && j < 100000; j++ {
		a := newAuthorRun(fmt.Sprintf("%s-c%d-a%d", w.phase, c, j), c, c%2 == 1, j%3 == 2)
		w.mu.Lock()
		w.authors = append(w.authors, a)
		w.mu.Unlock()
		for i := range a.ops {
			if w.stopped.Load() || !w.exec(url, a, i) {
				break
			}
		}
	}
}

// exec sends op i of a and records its outcome; it reports whether the op
// was acked.
func (w *workload) exec(url string, a *authorRun, i int) bool {
	o := a.ops[i]
	status, body, err := w.send(url, a, i)
	switch {
	case err != nil:
		o.outcome, o.detail = unknown, err.Error()
		w.count("transport error")
		return false
	case status >= 500:
		o.outcome, o.detail = unknown, fmt.Sprintf("%d %s", status, oneLine(body))
		w.count(fmt.Sprint(status))
		return false
	case status >= 300:
		// Nothing in the script can be rejected: a 4xx means a lost
		// or doubled write, or a broken API.
		o.outcome, o.detail = unknown, fmt.Sprintf("%d %s", status, oneLine(body))
		w.count(fmt.Sprint(status))
		w.t.Errorf("%s %s was rejected: %d %s", a.code, o.kind, status, oneLine(body))
		return false
	}
	o.outcome = acked
	w.acked.Add(1)
	w.checkAnswer(a, i, status, body, "")
	if o.idemKey != "" {
		// A retry with the same key returns the first outcome and
		// applies nothing again. A retry that gets no answer (the
		// crash) proves nothing either way.
		s2, b2, err := w.send(url, a, i)
		if err == nil && s2 < 500 && (s2 != status || !bytes.Equal(b2, body)) {
			w.t.Errorf("%s %s with Idempotency-Key %s: first answer %d %s, retry answered %d %s",
				a.code, o.kind, o.idemKey, status, oneLine(body), s2, oneLine(b2))
		}
	}
	return true
}

// checkAnswer checks the answer to an acked op i of a against the model.
func (w *workload) checkAnswer(a *authorRun, i, status int, body []byte, how string) {
	o := a.ops[i]
	_, want := a.expected(i + 1)
	switch o.kind {
	case opDelete:
		if status != http.StatusNoContent {
			w.t.Errorf("%s%s %s answered %d, want 204", a.code, how, o.kind, status)
		}
		return
	case opCreate:
		if status != http.StatusCreated {
			w.t.Errorf("%s%s %s answered %d, want 201", a.code, how, o.kind, status)
		}
	case opUpdate:
		if status != http.StatusOK {
			w.t.Errorf("%s%s %s answered %d, want 200", a.code, how, o.kind, status)
		}
	}
	var got authorView
	if err := json.Unmarshal(body, &got); err != nil {
		w.t.Errorf("%s%s %s answered %d with an undecodable author: %v: %s", a.code, how, o.kind, status, err, oneLine(body))
		return
	}
	if got != viewOf(want) {
		w.t.Errorf("%s%s %s (op %d) answered %+v, want %+v: a write was lost or applied twice", a.code, how, o.kind, i, got, viewOf(want))
	}
}

func (w *workload) count(what string) {
	w.mu.Lock()
	w.statusN[what]++
	w.mu.Unlock()
}

// send sends op i of a and returns the answer.
func (w *workload) send(url string, a *authorRun, i int) (int, []byte, error) {
	o := a.ops[i]
	var method, path string
	var body any
	switch o.kind {
	case opCreate:
		method, path = http.MethodPost, "/authors"
		body = map[string]string{"code": a.code, "firstName": o.first, "lastName": o.last}
	case opUpdate:
		method, path = http.MethodPut, "/authors/"+a.code
		body = map[string]string{"firstName": o.first, "lastName": o.last}
	case opDelete:
		method, path = http.MethodDelete, "/authors/"+a.code
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if o.idemKey != "" {
		req.Header.Set("Idempotency-Key", o.idemKey)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer (%d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, b, nil
}

// summary counts ops by outcome.
func (w *workload) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := map[outcome]int{}
	idem := 0
	for _, a := range w.authors {
		for _, o := range a.ops {
			n[o.outcome]++
			if o.outcome == unknown && o.idemKey != "" {
				idem++
			}
		}
	}
	return fmt.Sprintf("%d authors, %d writes acked, %d unknown (%d with an Idempotency-Key); not acked: %v",
		len(w.authors), n[acked], n[unknown], idem, w.statusN)
}

// probe is the first write on one partition after a restart.
type probe struct {
	partition int32
	author    *authorRun
	took      time.Duration // until the write was acked
	attempts  int
}

// probeWrites creates, right after a restart, one new author on each
// partition, sending the create again with the same Idempotency-Key until
// it is acked (each attempt waits up to the service's WRITE_TIMEOUT for its
// outcome), for at most timeout; then the author's other writes must
// succeed at once. onStall is called once when a first attempt fails. It
// returns, per partition, how long the service took to accept a write.
func (w *workload) probeWrites(url string, partitions int32, timeout time.Duration, onStall func()) []*probe {
	var probes []*probe
	for n := 0; int32(len(probes)) < partitions && n < 10000; n++ {
		code := fmt.Sprintf("after-restart-%d", n)
		if p := eskafka.PartitionFor(code, partitions); int(p) == len(probes) {
			probes = append(probes, &probe{partition: p, author: newAuthorRun(code, -1, true, true)})
		}
	}
	if int32(len(probes)) < partitions {
		w.t.Fatalf("found no probe key for every one of %d partitions", partitions)
	}
	var stalled sync.Once
	var wg sync.WaitGroup
	for _, p := range probes {
		w.mu.Lock()
		w.authors = append(w.authors, p.author)
		w.mu.Unlock()
		wg.Go(func() {
			a, o := p.author, p.author.ops[0]
			start := time.Now()
			for {
				p.attempts++
				status, body, err := w.send(url, a, 0)
				if err == nil && status >= 200 && status < 300 {
					p.took = time.Since(start)
					o.outcome, o.retried = acked, p.attempts > 1
					w.acked.Add(1)
					w.checkAnswer(a, 0, status, body, "")
					break
				}
				o.outcome, o.detail = unknown, fmt.Sprintf("%d %v %s", status, err, oneLine(body))
				if err == nil && status < 500 {
					w.t.Errorf("first write on partition %d after the restart was rejected: %v", p.partition, a)
					return
				}
				if time.Since(start) > timeout {
					w.t.Errorf("no write on partition %d accepted within %v of the restart (%d attempts): %v", p.partition, timeout, p.attempts, a)
					return
				}
				if onStall != nil {
					stalled.Do(onStall)
				}
				time.Sleep(200 * time.Millisecond)
			}
			for i := 1; i < len(a.ops); i++ {
				if !w.exec(url, a, i) {
					w.t.Errorf("a write on partition %d failed after a first one succeeded: %v", p.partition, a)
					return
				}
			}
		})
	}
	wg.Wait()
	return probes
}

func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
