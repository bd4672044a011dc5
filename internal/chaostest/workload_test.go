package chaostest

// The load: writers that script authors and books, readers, and a balancer
// in front of the instances that sends requests to those whose /readyz
// answered 200 at its last check, as a load balancer would.
//
// Every write carries an Idempotency-Key and is sent again with it, through
// whichever instance the balancer picks, until it is acknowledged (a 2xx):
// so every write sent is applied exactly once, and the history each key
// must have is known exactly. Each attempt is recorded, for the figures.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
)

// balancer picks the instance of each request.
type balancer struct {
	instances []*instance
	hc        *http.Client

	mu     sync.Mutex
	status []int    // the last /readyz status of each instance; 0: no answer
	why    []string // what the last /readyz other than 200 said
	next   int
	// readiness is every change of an instance's /readyz, in order.
	readiness []readyChange
	stop      chan struct{}
	wg        sync.WaitGroup
}

// readyChange is a change in what an instance's /readyz answers.
type readyChange struct {
	at       time.Time
	instance int
	status   int // 0: no answer within the check's timeout
}

func newBalancer(instances []*instance) *balancer {
	return &balancer{
		instances: instances, hc: &http.Client{Timeout: time.Second},
		status: make([]int, len(instances)), why: make([]string, len(instances)), stop: make(chan struct{}),
	}
}

// run checks every instance's /readyz every 250ms until close.
func (b *balancer) run() {
	for i, in := range b.instances {
		b.wg.Go(func() {
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				status, why := 0, "no answer"
				if resp, err := b.hc.Get(in.url + "/readyz"); err == nil {
					body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
					resp.Body.Close()
					status, why = resp.StatusCode, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
				} else {
					why = err.Error()
				}
				b.mu.Lock()
				b.why[i] = why
				if b.status[i] != status || len(b.readiness) == 0 {
					b.readiness = append(b.readiness, readyChange{at: time.Now(), instance: i, status: status})
				}
				b.status[i] = status
				b.mu.Unlock()
				select {
				case <-b.stop:
					return
				case <-tick.C:
				}
			}
		})
	}
}

func (b *balancer) close() {
	close(b.stop)
	b.wg.Wait()
	b.hc.CloseIdleConnections()
}

// pick returns the next instance (round robin) among those ready; if none
// is, among those that answered; if none did, any.
func (b *balancer) pick() (int, *instance) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, want := range []func(int) bool{
		func(s int) bool { return s == http.StatusOK },
		func(s int) bool { return s != 0 },
		func(int) bool { return true },
	} {
		for range b.instances {
			i := b.next % len(b.instances)
			b.next++
			if want(b.status[i]) {
				return i, b.instances[i]
			}
		}
	}
	return 0, b.instances[0]
}

// notReady returns the instances whose /readyz did not answer 200 last,
// each with what it answered.
func (b *balancer) notReady() map[*instance]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := map[*instance]string{}
	for i, s := range b.status {
		if s != http.StatusOK {
			m[b.instances[i]] = b.why[i]
		}
	}
	return m
}

func (b *balancer) changes() []readyChange {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]readyChange(nil), b.readiness...)
}

// attempt is one HTTP request of the load.
type attempt struct {
	write     bool
	op        string // create-author, update-author, delete-author, create-book, rename-book, read
	key       string // of a write
	partition int32
	instance  int
	start     time.Time
	took      time.Duration
	status    int    // 0: no answer (transport error or timeout)
	err       string // the transport error
	detail    string // the start of a 5xx answer to a write
}

// writeOp is one scripted write and what became of it.
type writeOp struct {
	op      string
	key     string
	method  string
	path    string
	body    any
	idemKey string

	partition int32
	// authorPartition is, for a create-book, the partition of the
	// author the service checks before it accepts the book.
	authorPartition int32

	acked    bool
	status   int
	answer   []byte
	attempts int
	first    time.Time // the first attempt's start
	ackedAt  time.Time
}

// authorRun is one author's script: created, two books of it created,
// updated, its first book renamed, and for every third author, deleted
// (so the reaction unassigns its books).
type authorRun struct {
	code      string
	first     string
	last      string
	first2    string
	last2     string
	ops       []*writeOp // create, update, delete, in order
	books     []*bookRun
	deleting  bool
	partition int32
}

// bookRun is one book's script: created with its author, maybe renamed.
type bookRun struct {
	id        string
	author    *authorRun
	title0    string
	title1    string
	ops       []*writeOp // create, rename
	partition int32
}

// load runs the writers and readers.
type load struct {
	t          *testing.T
	lb         *balancer
	hc         *http.Client
	partitions int32

	mu       sync.Mutex
	attempts []attempt
	authors  []*authorRun
	books    []*bookRun
	stale    []string // reads older than a write acknowledged before they began
	rejected []string // writes answered 4xx

	stopped atomic.Bool
	drainBy atomic.Int64 // unix nanos: writes in flight give up after
	wg      sync.WaitGroup
}

// writeTimeout is the instances' WRITE_TIMEOUT (their default).
const writeTimeout = 10 * time.Second

func newLoad(t *testing.T, lb *balancer, partitions int32) *load {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	// A write waits up to WRITE_TIMEOUT for its outcome; a request to a
	// frozen instance gets no answer: give up a little after that.
	return &load{t: t, lb: lb, hc: &http.Client{Timeout: writeTimeout + 5*time.Second, Transport: tr}, partitions: partitions}
}

// start starts writers writing and readers reading.
func (l *load) start(writers, readers int) {
	for c := range writers {
		l.wg.Go(func() { l.writer(c) })
	}
	for range readers {
		l.wg.Go(l.reader)
	}
}

// finish stops the load: no new script begins, and writes in flight are
// retried until acknowledged for at most drain.
func (l *load) finish(drain time.Duration) {
	l.drainBy.Store(time.Now().Add(drain).UnixNano())
	l.stopped.Store(true)
	l.wg.Wait()
}

func (l *load) writer(c int) {
	for j := 0; !l.stopped.Load(); j++ {
		a := &authorRun{
			code: fmt.Sprintf("chaos-c%d-a%d", c, j), first: fmt.Sprintf("First%d", j), last: fmt.Sprintf("Last c%d a%d", c, j),
			first2: fmt.Sprintf("Updated%d", j), last2: fmt.Sprintf("Last c%d a%d (updated)", c, j), deleting: j%3 == 2,
		}
		a.partition = eskafka.PartitionFor(a.code, l.partitions)
		l.mu.Lock()
		l.authors = append(l.authors, a)
		l.mu.Unlock()
		if !l.do(l.addOp(a, &writeOp{op: "create-author", method: http.MethodPost, path: "/authors",
			body: map[string]string{"code": a.code, "firstName": a.first, "lastName": a.last}}), a.partition) {
			continue
		}
		for k := range 2 {
			b := &bookRun{id: ids.New(), author: a, title0: fmt.Sprintf("Book %d of %s", k, a.code), title1: fmt.Sprintf("Book %d of %s, renamed", k, a.code)}
			b.partition = eskafka.PartitionFor(b.id, l.partitions)
			a.books = append(a.books, b)
			l.mu.Lock()
			l.books = append(l.books, b)
			l.mu.Unlock()
			if l.stopped.Load() || !l.do(l.addBookOp(b, &writeOp{op: "create-book", method: http.MethodPost, path: "/books",
				body: map[string]string{"id": b.id, "title": b.title0, "authorCode": a.code}, authorPartition: a.partition}), b.partition) {
				break
			}
		}
		if l.stopped.Load() || !l.do(l.addOp(a, &writeOp{op: "update-author", method: http.MethodPut, path: "/authors/" + a.code,
			body: map[string]string{"firstName": a.first2, "lastName": a.last2}}), a.partition) {
			continue
		}
		if len(a.books) > 0 && a.books[0].created() {
			b := a.books[0]
			if l.stopped.Load() || !l.do(l.addBookOp(b, &writeOp{op: "rename-book", method: http.MethodPut, path: "/books/" + b.id,
				body: map[string]string{"title": b.title1}}), b.partition) {
				continue
			}
		}
		if a.deleting && !l.stopped.Load() {
			l.do(l.addOp(a, &writeOp{op: "delete-author", method: http.MethodDelete, path: "/authors/" + a.code}), a.partition)
		}
	}
}

// addOp adds o to the script of a (readers look at scripts: under l.mu).
func (l *load) addOp(a *authorRun, o *writeOp) *writeOp {
	o.key = a.code
	o.idemKey = fmt.Sprintf("%s-%s", a.code, o.op)
	l.mu.Lock()
	a.ops = append(a.ops, o)
	l.mu.Unlock()
	return o
}

// addBookOp adds o to the script of b.
func (l *load) addBookOp(b *bookRun, o *writeOp) *writeOp {
	o.key = b.id
	o.idemKey = fmt.Sprintf("%s-%s", b.id, o.op)
	l.mu.Lock()
	b.ops = append(b.ops, o)
	l.mu.Unlock()
	return o
}

// created reports whether the book's creation was acknowledged.
func (b *bookRun) created() bool { return len(b.ops) > 0 && b.ops[0].acked }

// renamed reports whether the book's rename was acknowledged.
func (b *bookRun) renamed() bool { return len(b.ops) > 1 && b.ops[1].acked }

// deleted reports whether the author's deletion was acknowledged.
func (a *authorRun) deleted() bool { return len(a.ops) > 2 && a.ops[2].acked }

// updated reports whether the author's update was acknowledged.
func (a *authorRun) updated() bool { return len(a.ops) > 1 && a.ops[1].acked }

// do sends o until it is acknowledged; it reports whether it was. A 4xx
// fails the test: nothing in the scripts can be refused.
func (l *load) do(o *writeOp, partition int32) bool {
	body, err := json.Marshal(o.body)
	if o.body == nil {
		body, err = nil, nil
	}
	if err != nil {
		l.t.Error(err)
		return false
	}
	l.mu.Lock()
	o.first, o.partition = time.Now(), partition
	l.mu.Unlock()
	for {
		l.mu.Lock()
		o.attempts++
		l.mu.Unlock()
		i, in := l.lb.pick()
		a := attempt{write: true, op: o.op, key: o.key, partition: partition, instance: i, start: time.Now()}
		status, answer, err := l.send(in.url, o.method, o.path, body, o.idemKey)
		a.took, a.status = time.Since(a.start), status
		if err != nil {
			a.err = err.Error()
		}
		if status >= 500 {
			a.detail = oneLine(answer)
			if len(a.detail) > 160 {
				a.detail = a.detail[:160]
			}
		}
		l.record(a)
		switch {
		case err == nil && status >= 200 && status < 300:
			l.mu.Lock()
			o.acked, o.status, o.answer, o.ackedAt = true, status, answer, time.Now()
			l.mu.Unlock()
			return true
		case err == nil && status >= 400 && status < 500:
			l.mu.Lock()
			l.rejected = append(l.rejected, fmt.Sprintf("%s %s %s (Idempotency-Key %s) via %s: %d %s", o.op, o.method, o.path, o.idemKey, in.name, status, oneLine(answer)))
			l.mu.Unlock()
			return false
		}
		if by := l.drainBy.Load(); by != 0 && time.Now().UnixNano() > by {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (l *load) record(a attempt) {
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	l.mu.Unlock()
}

func (l *load) send(base, method, path string, body []byte, idemKey string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := l.hc.Do(req)
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

// reader reads authors and books written before, through the balancer,
// and checks that each read shows at least the last write acknowledged
// before the read began (read your writes, from any instance).
func (l *load) reader() {
	for !l.stopped.Load() {
		path, partition, minVersion, what := l.readTarget()
		if path == "" {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		i, in := l.lb.pick()
		a := attempt{op: "read", partition: partition, instance: i, start: time.Now()}
		status, answer, err := l.send(in.url, http.MethodGet, path, nil, "")
		a.took, a.status = time.Since(a.start), status
		if err != nil {
			a.err = err.Error()
		}
		if status >= 500 {
			a.detail = oneLine(answer)
			if len(a.detail) > 160 {
				a.detail = a.detail[:160]
			}
		}
		l.record(a)
		if status == http.StatusOK {
			var v struct {
				Version int64 `json:"version"`
			}
			if json.Unmarshal(answer, &v) == nil && v.Version < minVersion {
				l.mu.Lock()
				l.stale = append(l.stale, fmt.Sprintf("GET %s via %s at %s: version %d, but version %d of %s was acknowledged before the read began: %s",
					path, in.name, a.start.Format("15:04:05.000"), v.Version, minVersion, what, oneLine(answer)))
				l.mu.Unlock()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readTarget picks an author or book whose creation was acknowledged, and
// returns its path and the version its last acknowledged write gave it
// (0 when a later write of it may have removed or changed it).
func (l *load) readTarget() (path string, partition int32, minVersion int64, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.books) == 0 || len(l.authors) == 0 {
		return "", 0, 0, ""
	}
	if rand.IntN(2) == 0 {
		a := l.authors[rand.IntN(len(l.authors))]
		if len(a.ops) == 0 || !a.ops[0].acked || a.deleting {
			return "", 0, 0, ""
		}
		v := int64(1)
		if a.updated() {
			v = 2
		}
		return "/authors/" + a.code, a.partition, v, "author " + a.code
	}
	b := l.books[rand.IntN(len(l.books))]
	if !b.created() {
		return "", 0, 0, ""
	}
	v := int64(2)
	if b.renamed() {
		v = 3
	}
	return "/books/" + b.id, b.partition, v, "book " + b.id
}

// snapshot returns the attempts so far.
func (l *load) snapshot() []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]attempt(nil), l.attempts...)
}

// writes returns every scripted write so far, authors' and books'.
func (l *load) writes() []*writeOp {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*writeOp
	for _, a := range l.authors {
		out = append(out, a.ops...)
	}
	for _, b := range l.books {
		out = append(out, b.ops...)
	}
	return out
}

// summary counts the attempts by status.
func (l *load) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, r := map[string]int{}, map[string]int{}
	for _, a := range l.attempts {
		m := r
		if a.write {
			m = w
		}
		m[statusName(a)]++
	}
	return fmt.Sprintf("%d authors, %d books; write attempts %v; reads %v", len(l.authors), len(l.books), w, r)
}

// statusName names an attempt's answer: its status, or "no answer".
func statusName(a attempt) string {
	if a.status == 0 {
		if strings.Contains(a.err, "Timeout") || strings.Contains(a.err, "deadline") {
			return "timeout"
		}
		return "no answer"
	}
	return fmt.Sprint(a.status)
}

func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
