package eskafka_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/embedded"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/store/memstore"
)

// setTopicConfig sets one config of a topic on the brokers.
func setTopicConfig(t *testing.T, brokers []string, topic, key, value string) {
	setTopicConfigTB(t, brokers, topic, key, value)
}

func setTopicConfigTB(t testing.TB, brokers []string, topic, key, value string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: kadm.StringPtr(value)}}, topic)
	if err == nil {
		_, err = resp.On(topic, nil)
	}
	if err == nil {
		for _, r := range resp {
			err = errors.Join(err, r.Err)
		}
	}
	if err != nil {
		t.Fatalf("set %s=%s on %s: %v", key, value, topic, err)
	}
}

// A command whose new state would not fit the changelog's
// max.message.bytes (as the broker reports it at start) is rejected as
// too_large before anything is produced; the key and every other key go on.
func TestTooLargeIsRejected(t *testing.T) {
	cfg := newConfig(t)
	ensureTopics(t, cfg)
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	setTopicConfig(t, cfg.Brokers, topics.Changelog, "max.message.bytes", "4096")
	e := start(t, cfg)
	e.do(open{"big"}, eskafka.SendOptions{})
	chunk := strings.Repeat("x", 1000)
	for i := range 3 {
		if res := e.do(pad{"big", chunk}, eskafka.SendOptions{}); !res.Accepted() {
			t.Fatalf("pad %d: %+v", i, res.Rejection)
		}
	}
	res := e.do(pad{"big", chunk + chunk}, eskafka.SendOptions{})
	if res.Accepted() || res.Rejection.Code != es.CodeTooLarge {
		t.Fatalf("a state over the changelog's limit: %+v %+v", res.Outcome, res.Rejection)
	}
	if res.Version != 4 || !strings.Contains(res.Rejection.Message, topics.Changelog) {
		t.Fatalf("rejection should keep version 4 and name the topic: version %d, %q", res.Version, res.Rejection.Message)
	}
	// The key still takes commands that fit, and so does every other.
	if res := e.do(add{"big", 1}, eskafka.SendOptions{}); !res.Accepted() || res.Version != 5 {
		t.Fatalf("after a refusal: %+v", res.Outcome)
	}
	if res := e.do(open{"small"}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("another key: %+v", res.Outcome)
	}
	for _, r := range readAll(t, cfg.Brokers, topics.Events) {
		if len(r.Value) > 1500 {
			t.Fatalf("an event of the refused command was written: %d bytes", len(r.Value))
		}
	}
}

// When the broker refuses what a batch produced (here: the results topic's
// limit was lowered after the processor read it, so the check before
// producing passes), the processor finds the command at fault, rejects it,
// dead-letters it, and processes every other command of the batch: it never
// retries the same batch forever.
func TestRefusedOutputIsDeadLettered(t *testing.T) {
	cfg := newConfig(t)
	cfg.MaxBatch = 50
	cfg.Linger = 50 * time.Millisecond
	e := start(t, cfg)
	topics := e.proc.Topics()
	e.do(open{"fat"}, eskafka.SendOptions{})
	// Incompressible: brokers measure batches compressed.
	noise := make([]byte, 2400)
	_, _ = rand.Read(noise)
	e.do(pad{"fat", base64.StdEncoding.EncodeToString(noise)}, eskafka.SendOptions{})
	for i := range 6 {
		e.do(open{key(i)}, eskafka.SendOptions{})
	}
	// Outcomes carry the state: the fat counter's no longer fit.
	setTopicConfig(t, cfg.Brokers, topics.Results, "max.message.bytes", "2000")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var msgs []string
	send := func(c cmd) {
		id := ids.New()
		msgs = append(msgs, id)
		if _, err := e.gw.Send(ctx, c, eskafka.SendOptions{MsgID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		send(add{key(i), 1})
		if i == 2 {
			send(add{"fat", 1})
		}
	}
	for i, id := range msgs {
		res, err := e.gw.Await(ctx, eskafka.Sent{MsgID: id})
		if err != nil {
			t.Fatalf("command %d: no outcome: %v", i, err)
		}
		if i == 3 { // the fat counter's
			if res.Accepted() || res.Rejection.Code != es.CodeTooLarge {
				t.Fatalf("the refused command: %s %+v", res.Status, res.Rejection)
			}
			continue
		}
		if !res.Accepted() {
			t.Fatalf("command %d was not processed: %+v", i, res.Rejection)
		}
	}
	dead := readAll(t, cfg.Brokers, topics.DeadLetter)
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	d := dead[0]
	if string(d.Key) != "fat" || header(d, "msgId") != msgs[3] || header(d, eskafka.HeaderDeadLetterKind) != eskafka.PoisonTooLarge ||
		header(d, eskafka.HeaderDeadLetterTopic) != topics.Commands || header(d, eskafka.HeaderDeadLetterReason) == "" {
		t.Fatalf("dead letter: key %q headers %v", d.Key, d.Headers)
	}
	if st, _ := storeState(t, cfg.Store, "fat"); st.Total != 0 {
		t.Fatalf("the refused command changed the state: %+v", st)
	}
	if res := e.do(add{key(0), 1}, eskafka.SendOptions{}); !res.Accepted() || res.State.Total != 2 {
		t.Fatalf("processing after the dead letter: %+v", res.Outcome)
	}
	if err := e.proc.Health(); err != nil {
		t.Fatalf("healthy after quarantining one record: %v", err)
	}
}

// A command whose handling panics is rejected and dead-lettered; the
// process and the stage go on, and what it produced before panicking is
// not committed.
func TestPanicIsDeadLettered(t *testing.T) {
	e := start(t, newConfig(t))
	e.do(open{"a"}, eskafka.SendOptions{})
	res := e.do(boom{"a"}, eskafka.SendOptions{})
	if res.Accepted() || res.Rejection.Code != es.CodeInternal || !strings.Contains(res.Rejection.Message, "panic") {
		t.Fatalf("a panicking command: %+v %+v", res.Outcome, res.Rejection)
	}
	if res := e.do(add{"a", 2}, eskafka.SendOptions{}); !res.Accepted() || res.State.Total != 2 {
		t.Fatalf("after a panic: %+v", res.Outcome)
	}
	dead := readAll(t, e.cfg.Brokers, e.proc.Topics().DeadLetter)
	if len(dead) != 1 || header(dead[0], eskafka.HeaderDeadLetterKind) != eskafka.PoisonPanic {
		t.Fatalf("dead letters: %d", len(dead))
	}
}

// A stored state that cannot be decoded quarantines its key: its commands
// are rejected as corrupt_state, and every other key flows.
func TestCorruptStateQuarantinesOneKey(t *testing.T) {
	cfg := newConfig(t)
	obs := &recordingObserver{}
	cfg.Observer = obs
	e := start(t, cfg)
	e.do(open{"good"}, eskafka.SendOptions{})
	e.do(open{"bad"}, eskafka.SendOptions{})
	e.stop()
	// Corrupt the changelog as a buggy writer could, and restore from it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topics.Changelog, Partition: eskafka.PartitionFor("bad", partitions), Key: []byte("bad"), Value: []byte("\xff not a state")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg.Store = memstore.New()
	e = start(t, cfg)
	res := e.do(add{"bad", 1}, eskafka.SendOptions{})
	if res.Accepted() || res.Rejection.Code != es.CodeCorruptState || !strings.Contains(res.Rejection.Message, `"bad"`) {
		t.Fatalf("command on a corrupt key: %+v %+v", res.Outcome, res.Rejection)
	}
	if res := e.do(add{"good", 1}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("command on another key: %+v", res.Outcome)
	}
	if _, err := e.proc.Get("bad"); err == nil {
		t.Fatal("reading the corrupt key succeeded")
	}
	items, _, _, err := e.proc.List("", 10)
	if err != nil || len(items) != 1 || items[0].ID != "good" {
		t.Fatalf("a list skips the corrupt key: %v %+v", err, items)
	}
	if err := e.proc.Health(); err != nil {
		t.Fatalf("a corrupt key must not make the stage unhealthy: %v", err)
	}
	if obs.count("poisoned:"+es.CodeCorruptState) != 1 {
		t.Fatalf("corrupt state not counted: %v", obs.snapshot())
	}
}

// An idempotency key (msgId) reused for a different command is refused; a
// true retry still returns the first outcome.
func TestIdempotencyKeyReused(t *testing.T) {
	e := start(t, newConfig(t))
	e.do(open{"k"}, eskafka.SendOptions{})
	opt := eskafka.SendOptions{MsgID: ids.New(), Idempotent: true}
	first := e.do(add{"k", 5}, opt)
	if !first.Accepted() {
		t.Fatalf("first: %+v", first.Outcome)
	}
	if retry := e.do(add{"k", 5}, opt); !retry.Accepted() || retry.State.Total != 5 {
		t.Fatalf("a retry: %+v", retry.Outcome)
	}
	other := e.do(add{"k", 7}, opt)
	if other.Accepted() || other.Rejection.Code != es.CodeIdempotencyKeyReused {
		t.Fatalf("a different command under the same key: %s %+v", other.Status, other.Rejection)
	}
	if st, _ := storeState(t, e.cfg.Store, "k"); st.Total != 5 {
		t.Fatalf("state %+v, want total 5", st)
	}
}

// Metric labels come from a closed set: the decoded command's type, never
// a header a producer chose.
func TestCommandTypeLabelIsClosed(t *testing.T) {
	cfg := newConfig(t)
	obs := &recordingObserver{}
	cfg.Observer = obs
	e := start(t, cfg)
	ctx := context.Background()
	recs := []*kgo.Record{
		{Topic: e.proc.Topics().Commands, Key: []byte("t"), Value: []byte(`{"type":"open","id":"t"}`), Headers: []kgo.RecordHeader{{Key: "msgId", Value: []byte("h-1")}, {Key: "type", Value: []byte("\xff\xfe")}}},
		{Topic: e.proc.Topics().Commands, Key: []byte("t"), Value: []byte(`garbage`), Headers: []kgo.RecordHeader{{Key: "msgId", Value: []byte("h-2")}, {Key: "type", Value: []byte("Anything-1")}}},
	}
	if err := e.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"h-1", "h-2"} {
		if _, err := e.gw.Await(ctx, eskafka.Sent{MsgID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for k := range obs.snapshot() {
		if strings.HasPrefix(k, "command:") && k != "command:open" && k != "command:unknown" {
			t.Fatalf("label from outside the closed set: %q", k)
		}
	}
	if obs.count("command:open") != 1 || obs.count("command:unknown") != 1 {
		t.Fatalf("labels: %v", obs.snapshot())
	}
}

// recordingObserver counts what the runtime reports.
type recordingObserver struct {
	mu     sync.Mutex
	counts map[string]int
}

func (o *recordingObserver) add(k string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = map[string]int{}
	}
	o.counts[k]++
}

func (o *recordingObserver) count(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[k]
}

func (o *recordingObserver) snapshot() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for k, v := range o.counts {
		out[k] = v
	}
	return out
}

func (o *recordingObserver) Transaction(string, int, bool, time.Duration) {}
func (o *recordingObserver) Lag(string, string, int32, int64)             {}
func (o *recordingObserver) Restored(string, int64)                       {}
func (o *recordingObserver) Command(_, typ, _, _ string)                  { o.add("command:" + typ) }
func (o *recordingObserver) Poisoned(_, kind string)                      { o.add("poisoned:" + kind) }
func (o *recordingObserver) Fenced(string)                                {}

// A stage that keeps failing reports it, and so does one whose batch does
// not commit for longer than the stall timeout; both recover once
// commits flow again.
func TestHealthTellsTheTruth(t *testing.T) {
	cfg := newConfig(t)
	cfg.StallTimeout = 300 * time.Millisecond
	var mu sync.Mutex
	mode := "ok"
	release := make(chan struct{})
	cfg.BeforeCommit = func(ctx context.Context) error {
		mu.Lock()
		m := mode
		mu.Unlock()
		switch m {
		case "fail":
			return errors.New("injected commit failure")
		case "block":
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}
	e := start(t, cfg)
	e.do(open{"h"}, eskafka.SendOptions{})
	if err := e.proc.Health(); err != nil {
		t.Fatalf("healthy stage: %v", err)
	}
	set := func(m string) { mu.Lock(); mode = m; mu.Unlock() }

	set("fail")
	ctx := context.Background()
	id := ids.New()
	if _, err := e.gw.Send(ctx, add{"h", 1}, eskafka.SendOptions{MsgID: id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failing stage to report itself", func() bool {
		err := e.proc.Health()
		return err != nil && strings.Contains(err.Error(), "injected commit failure")
	})
	set("block")
	waitFor(t, "the blocked stage to report a stall", func() bool {
		err := e.proc.Health()
		return err != nil && strings.Contains(err.Error(), "committing one batch")
	})
	set("ok")
	close(release)
	if _, err := e.gw.Await(ctx, eskafka.Sent{MsgID: id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stage to be healthy again", func() bool { return e.proc.Health() == nil })
}

// The outcome cache stays under its byte bound however large the
// outcomes (each carries the aggregate's state).
func TestOutcomeCacheBoundedInBytes(t *testing.T) {
	cfg := newConfig(t)
	cfg.OutcomeCacheBytes = 64 << 10
	e := start(t, cfg)
	e.do(open{"o"}, eskafka.SendOptions{})
	e.do(pad{"o", strings.Repeat("z", 20_000)}, eskafka.SendOptions{})
	for range 20 {
		e.do(add{"o", 1}, eskafka.SendOptions{})
	}
	n, b := e.outcomes.Size()
	if b > cfg.OutcomeCacheBytes || n >= 22 || n == 0 {
		t.Fatalf("outcome cache holds %d outcomes in %d bytes, bound %d", n, b, cfg.OutcomeCacheBytes)
	}
}

// With every broker gone, sending a command ends when its context does,
// saying it is unconfirmed; it never holds its caller until the brokers
// return (franz-go keeps such a record waiting for an answer).
func TestSendEndsWhenBrokersAreGone(t *testing.T) {
	e := startThenLoseTheBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := e.gw.Send(ctx, add{"g", 1}, eskafka.SendOptions{MsgID: ids.New()}); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, eskafka.ErrSendUnconfirmed) {
			t.Fatalf("send with the brokers gone: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("send still waiting a minute after its context ended")
	}
}

// startThenLoseTheBroker starts a processor and gateway on a broker of
// their own, opens key "g", and closes the broker.
func startThenLoseTheBroker(t *testing.T) *env {
	t.Helper()
	b, err := embedded.Start("127.0.0.1:0", "", embedded.Plaintext())
	if err != nil {
		t.Fatal(err)
	}
	cfg := newConfig(t)
	cfg.Brokers = []string{b.Addr()}
	e := start(t, cfg)
	e.do(open{"g"}, eskafka.SendOptions{})
	b.Close()
	return e
}

// The local store forgets an idempotency key when the dedup topic does:
// without the sweep it kept every key ever used, and a disk filled at the
// rate of idempotent writes. Past the retention the key names a new
// command. restart also rebuilds the store from the topics first: a
// restored entry is dated by its changelog record, and expires the same.
func TestIdempotencyKeysExpireFromTheStore(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			const retention = 8 * time.Second
			cfg := eskafka.ShortExpiry(newConfig(t), retention, 100*time.Millisecond)
			e := start(t, cfg)
			e.do(open{"k"}, eskafka.SendOptions{})
			opt := eskafka.SendOptions{MsgID: ids.New(), Idempotent: true}
			sent := time.Now()
			if first := e.do(add{"k", 5}, opt); !first.Accepted() {
				t.Fatalf("first: %+v", first.Outcome)
			}
			if restart {
				e.stop()
				cfg.Store = memstore.New()
				e = start(t, cfg)
				e.waitReady()
			}
			entries := func() int {
				n := 0
				if err := cfg.Store.Scan("m/", "", func(string, []byte) bool { n++; return true }); err != nil {
					t.Fatal(err)
				}
				return n
			}
			// The store has the entry once the batch's commit (or the
			// restore) reached it, a moment after the outcome.
			for n := entries(); n != 1; n = entries() {
				if time.Since(sent) >= retention {
					t.Fatalf("%d idempotency entries in the store after the command, want 1", n)
				}
				time.Sleep(10 * time.Millisecond)
			}
			deadline := time.Now().Add(30 * time.Second)
			for entries() != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the idempotency entry is still in the store %v after its command, past its retention of %v", time.Since(sent), retention)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if other := e.do(add{"k", 7}, opt); !other.Accepted() || other.State.Total != 12 {
				t.Fatalf("a command under a key past its retention: %s %+v %+v", other.Status, other.Rejection, other.State)
			}
		})
	}
}
