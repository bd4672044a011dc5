package service_test

// The shared test harness of this package: it runs whole catalog services
// in-process against a broker (an in-process kfake, or the real Kafka named
// by KAFKA_BROKERS), serves their HTTP API on 127.0.0.1:0, and talks to them
// with plain HTTP. A harness can stop an instance and start another on the
// same data directory and broker (restart tests), optionally with the local
// stores deleted first (restore-from-changelog tests).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/config"
	"github.com/bookscatalog/catalog/internal/service"
	"github.com/bookscatalog/catalog/kafkatest"
)

// harness is one logical service (broker, service name, data directory)
// whose instances can be started and stopped.
type harness struct {
	t *testing.T
	// Brokers, Service, DataDir and Partitions go into every instance's
	// configuration.
	Brokers    []string
	Service    string
	DataDir    string
	Partitions int32
	// ClientOpts and BeforeCommit go into every instance's Options.
	ClientOpts   []kgo.Opt
	BeforeCommit func(context.Context) error
	// Configure, if set, adjusts each instance's configuration last.
	Configure func(*config.Config)
}

// fastRebalance makes a restarted or crashed instance's partitions move
// quickly.
var fastRebalance = []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)}

// newHarness returns a harness on a fresh broker (kfake) or the shared real
// one, with a service name unique to t, a temporary data directory and 3
// partitions; opts adjust it before anything starts.
func newHarness(t *testing.T, opts ...func(*harness)) *harness {
	t.Helper()
	h := &harness{
		t:          t,
		Brokers:    kafkatest.Brokers(t),
		Service:    kafkatest.Service(t),
		DataDir:    t.TempDir(),
		Partitions: 3,
		ClientOpts: fastRebalance,
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// config returns the configuration of an instance keeping its data in dir.
func (h *harness) config(dir string) config.Config {
	h.t.Helper()
	cfg, err := config.Load(nil, func(k string) string {
		if k == "STAGE_OVERLAP" {
			// The suite runs with either commit path (scripts/test).
			return os.Getenv(k)
		}
		if k == "LOG_LEVEL" {
			// Quiet by default; TEST_LOG_LEVEL=debug shows everything.
			if v := os.Getenv("TEST_LOG_LEVEL"); v != "" {
				return v
			}
			return "error"
		}
		return ""
	})
	if err != nil {
		h.t.Fatal(err)
	}
	cfg.Brokers = h.Brokers
	cfg.DataDir = dir
	cfg.Service = h.Service
	cfg.Partitions = h.Partitions
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.AdvertisedURL = "" // set from the listener in startIn
	if h.Configure != nil {
		h.Configure(&cfg)
	}
	return cfg
}

// start starts an instance on the harness's data directory and waits until
// it is ready.
func (h *harness) start() *instance {
	h.t.Helper()
	return h.startIn(h.DataDir)
}

// startWithoutStores deletes the local stores of the data directory (the
// broker's data and the instance id stay), then starts an instance: it must
// rebuild its stores from the changelogs.
func (h *harness) startWithoutStores() *instance {
	h.t.Helper()
	h.deleteStores(h.DataDir)
	return h.start()
}

// deleteStores removes the local stores kept under dir.
func (h *harness) deleteStores(dir string) {
	h.t.Helper()
	if err := os.RemoveAll(filepath.Join(dir, "stores")); err != nil {
		h.t.Fatal(err)
	}
}

// startIn starts an instance keeping its data in dir (several instances of
// one service need one directory each) and waits until it is ready. It is
// stopped when the test ends, if not before.
func (h *harness) startIn(dir string) *instance {
	h.t.Helper()
	inst := h.launch(dir)
	inst.waitReady(60 * time.Second)
	return inst
}

// launch starts an instance without waiting for it to become ready.
func (h *harness) launch(dir string) *instance {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := h.config(dir)
	url := "http://" + ln.Addr().String()
	if cfg.AdvertisedURL == "" {
		cfg.AdvertisedURL = url
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.New(ctx, cfg, service.Options{Listener: ln, ClientOpts: h.ClientOpts, BeforeCommit: h.BeforeCommit})
	if err != nil {
		cancel()
		ln.Close()
		h.t.Fatalf("service.New: %v", err)
	}
	inst := &instance{
		t: h.t, Svc: svc, URL: url, cancel: cancel, done: make(chan error, 1),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}},
	}
	go func() { inst.done <- svc.Run(ctx) }()
	h.t.Cleanup(inst.stop)
	return inst
}

// instance is one running service.
type instance struct {
	t      *testing.T
	Svc    *service.Service
	URL    string
	cancel context.CancelFunc
	done   chan error
	client *http.Client
	exited bool
}

// waitReady waits for GET /readyz to answer 200.
func (i *instance) waitReady(timeout time.Duration) {
	i.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequest(http.MethodGet, i.URL+"/readyz", nil)
		resp, err := i.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-i.done:
			i.exited = true
			i.t.Fatalf("service stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			i.t.Fatalf("service at %s not ready within %s (last: %v)", i.URL, timeout, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// stop shuts the instance down gracefully and waits for Run to return;
// Run's error fails the test. Stopping twice does nothing.
func (i *instance) stop() {
	i.t.Helper()
	if i.exited {
		return
	}
	i.exited = true
	i.cancel()
	select {
	case err := <-i.done:
		if err != nil {
			i.t.Errorf("service Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		i.t.Errorf("service at %s did not stop within 60s", i.URL)
	}
	i.client.CloseIdleConnections()
}

// response is a fully read HTTP response.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	req    string
}

func (r *response) String() string {
	return fmt.Sprintf("%s -> %d %s", r.req, r.Status, bytes.TrimSpace(r.Body))
}

// hdr builds request headers from key/value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// do sends a request to the instance. body is sent as it is when it is a
// string or []byte, as JSON otherwise, and not at all when nil. A body gets
// Content-Type: application/json unless headers set one; a header set to ""
// is removed.
func (i *instance) do(method, path string, body any, headers http.Header) *response {
	i.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			i.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, i.URL+path, rd)
	if err != nil {
		i.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range headers {
		req.Header.Del(k)
		for _, v := range vs {
			if v != "" {
				req.Header.Add(k, v)
			}
		}
	}
	resp, err := i.client.Do(req)
	if err != nil {
		i.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		i.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b, req: method + " " + path}
}

func (i *instance) get(path string) *response { return i.do(http.MethodGet, path, nil, nil) }

// expect fails the test unless r has status; it decodes a JSON body into
// out when out is not nil.
func (r *response) expect(t testing.TB, status int, out any) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: want status %d", r, status)
	}
	if out != nil {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "application/json" {
			t.Fatalf("%s: Content-Type %q, want application/json", r, r.Header.Get("Content-Type"))
		}
		if err := json.Unmarshal(r.Body, out); err != nil {
			t.Fatalf("%s: decode: %v", r, err)
		}
	}
	return r
}

// problemDoc is an RFC 9457 problem as the API writes it.
type problemDoc struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
	Code   string `json:"code"`
	MsgID  string `json:"msgId"`
}

// expectProblem fails the test unless r is an application/problem+json
// response with status whose status member agrees and, when field is not
// empty, whose field member is field.
func (r *response) expectProblem(t testing.TB, status int, field string) problemDoc {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: want status %d", r, status)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q, want application/problem+json", r, ct)
	}
	var p problemDoc
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("%s: decode problem: %v", r, err)
	}
	if p.Status != status || p.Title == "" || p.Type == "" || p.Detail == "" {
		t.Fatalf("%s: incomplete problem %+v", r, p)
	}
	if field != "" && p.Field != field {
		t.Fatalf("%s: problem field %q, want %q", r, p.Field, field)
	}
	return p
}

// readCommitted returns every committed record of topic, read with a
// read_committed consumer from the start up to the last stable offsets.
func (h *harness) readCommitted(topic string) []*kgo.Record {
	h.t.Helper()
	return h.readTopic(topic, true)
}

// readUncommitted returns every data record of topic, aborted ones too, up
// to the high watermarks.
func (h *harness) readUncommitted(topic string) []*kgo.Record {
	h.t.Helper()
	return h.readTopic(topic, false)
}

func (h *harness) readTopic(topic string, committed bool) []*kgo.Record {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(h.Brokers...))
	if err != nil {
		h.t.Fatal(err)
	}
	list, isolation := kadm.NewClient(adm).ListCommittedOffsets, kgo.ReadCommitted()
	if !committed {
		list, isolation = kadm.NewClient(adm).ListEndOffsets, kgo.ReadUncommitted()
	}
	ends, err := list(ctx, topic)
	adm.Close()
	if err != nil {
		h.t.Fatalf("end offsets of %s: %v", topic, err)
	}
	targets := map[int32]int64{}
	consume := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			h.t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		if o.Offset > 0 {
			targets[o.Partition] = o.Offset
			consume[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(targets) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(h.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: consume}),
		kgo.FetchIsolationLevel(isolation),
		kgo.KeepControlRecords(),
	)
	if err != nil {
		h.t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for len(targets) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			h.t.Fatalf("read %s: %v (still waiting for partitions %v)", topic, ctx.Err(), targets)
		}
		for _, fe := range fetches.Errors() {
			h.t.Fatalf("read %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			target, ok := targets[r.Partition]
			if !ok {
				return
			}
			if !r.Attrs.IsControl() {
				recs = append(recs, r)
			}
			if r.Offset+1 >= target {
				delete(targets, r.Partition)
			}
		})
	}
	return recs
}

// events returns the committed events of aggregate (e.g. "authors") about
// key, in order, as their type headers.
func (h *harness) events(aggregate, key string) []string {
	h.t.Helper()
	var types []string
	for _, r := range h.readCommitted(eskafka.AggregateTopics(h.Service, aggregate).Events) {
		if string(r.Key) != key {
			continue
		}
		typ := ""
		for _, hd := range r.Headers {
			if hd.Key == eskafka.HeaderType {
				typ = string(hd.Value)
			}
		}
		types = append(types, typ)
	}
	return types
}
