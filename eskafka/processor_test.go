package eskafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/memstore"
)

// Every accepted command's events, changelog record and outcome appear
// exactly once; rejections write no event and no state.
func TestExactlyOnceOutputs(t *testing.T) { checkExactlyOnceOutputs(t, newConfig(t)) }

// checkExactlyOnceOutputs is TestExactlyOnceOutputs on cfg.
func checkExactlyOnceOutputs(t *testing.T, cfg eskafka.Config) {
	e := start(t, cfg)
	const n = 20
	for i := range n {
		if res := e.do(open{key(i)}, eskafka.SendOptions{}); !res.Accepted() || res.State.Version != 1 {
			t.Fatalf("open %d: %+v", i, res.Outcome)
		}
		if res := e.do(add{key(i), int64(i)}, eskafka.SendOptions{}); !res.Accepted() || res.State.Total != int64(i) || res.State.Version != 2 {
			t.Fatalf("add %d: %+v", i, res.Outcome)
		}
	}
	rej := e.do(open{key(0)}, eskafka.SendOptions{})
	if rej.Accepted() || rej.Rejection.Code != "already_exists" || rej.Version != 2 {
		t.Fatalf("duplicate open: %+v", rej.Outcome)
	}
	if res := e.do(shut{key(1)}, eskafka.SendOptions{}); !res.Accepted() || res.Exists {
		t.Fatalf("shut: %+v", res.Outcome)
	}

	topics := e.proc.Topics()
	events := readAll(t, e.cfg.Brokers, topics.Events)
	if len(events) != 2*n+1 {
		t.Fatalf("events topic holds %d records, want %d", len(events), 2*n+1)
	}
	seen := map[string]bool{}
	for _, r := range events {
		id := header(r, eskafka.HeaderMsgID) + "/" + header(r, eskafka.HeaderVersion)
		if seen[id] {
			t.Fatalf("event %s appears twice", id)
		}
		seen[id] = true
		if want := eskafka.PartitionFor(string(r.Key), partitions); r.Partition != want {
			t.Fatalf("event of %s on partition %d, want %d", r.Key, r.Partition, want)
		}
	}
	changelog := readAll(t, e.cfg.Brokers, topics.Changelog)
	if len(changelog) != 2*n+1 {
		t.Fatalf("changelog holds %d records, want %d", len(changelog), 2*n+1)
	}
	if last := changelog[len(changelog)-1]; string(last.Key) == key(1) && last.Value != nil {
		t.Fatalf("last changelog record of a closed counter is not a tombstone")
	}
	results := readAll(t, e.cfg.Brokers, topics.Results)
	msgs := map[string]int{}
	for _, r := range results {
		msgs[header(r, eskafka.HeaderMsgID)]++
	}
	if len(results) != 2*n+2 || len(msgs) != 2*n+2 {
		t.Fatalf("results: %d records for %d msgIds, want %d each", len(results), len(msgs), 2*n+2)
	}
	e.waitReady()
	if c, err := e.proc.Get(key(5)); err != nil || c.Total != 5 {
		t.Fatalf("Get = %+v, %v", c, err)
	}
	if _, err := e.proc.Get(key(1)); !errors.Is(err, eskafka.ErrNotFound) {
		t.Fatalf("Get of closed counter: %v", err)
	}
}

// A failure between producing and committing leaves no trace: nothing in
// the topics (read_committed), nothing in the store; the commands are
// processed again and then succeed once.
func TestAbortLeavesNoTrace(t *testing.T) {
	cfg := newConfig(t)
	var fail atomic.Int32
	fail.Store(2) // fail the first two transactions
	cfg.BeforeCommit = func(context.Context) error {
		if fail.Add(-1) >= 0 {
			return errors.New("injected failure")
		}
		return nil
	}
	ms := cfg.Store.(*memstore.Store)
	e := start(t, cfg)
	res := e.do(open{"x"}, eskafka.SendOptions{})
	if !res.Accepted() {
		t.Fatalf("open: %+v", res.Outcome)
	}
	if fail.Load() >= 0 {
		t.Fatalf("failure hook ran %d times, want the first attempts to fail", 2-fail.Load())
	}
	topics := e.proc.Topics()
	for _, topic := range []string{topics.Events, topics.Changelog, topics.Results} {
		if recs := readAll(t, cfg.Brokers, topic); len(recs) != 1 {
			t.Fatalf("%s holds %d committed records after 2 aborts and 1 commit, want 1", topic, len(recs))
		}
	}
	if c, ok := storeState(t, ms, "x"); !ok || c.Version != 1 {
		t.Fatalf("store state = %+v, %v", c, ok)
	}
}

// A restart with the store lost restores every state from the changelog; a
// restart with the store intact reads only the tail.
func TestRestore(t *testing.T) {
	cfg := newConfig(t)
	e := start(t, cfg)
	const n = 30
	for i := range n {
		e.do(open{key(i)}, eskafka.SendOptions{})
		e.do(add{key(i), 1}, eskafka.SendOptions{})
	}
	e.do(shut{key(0)}, eskafka.SendOptions{})
	e.stop()

	// Store deleted: everything comes back from the changelog, and the
	// history index from the events (as many records each).
	cfg.Store = memstore.New()
	e2 := start(t, cfg)
	e2.waitReady()
	if got := e2.proc.Restored(); got != 2*(2*n+1) {
		t.Fatalf("restored %d changelog and event records, want %d", got, 2*(2*n+1))
	}
	for i := 1; i < n; i++ {
		if c, err := e2.proc.Get(key(i)); err != nil || c.Total != 1 || c.Version != 2 {
			t.Fatalf("after restore %s = %+v, %v", key(i), c, err)
		}
	}
	if _, err := e2.proc.Get(key(0)); !errors.Is(err, eskafka.ErrNotFound) {
		t.Fatalf("closed counter after restore: %v", err)
	}
	items, _, _, err := e2.proc.List("", 1000)
	if err != nil || len(items) != n-1 {
		t.Fatalf("List after restore: %d items, %v", len(items), err)
	}
	// Processing goes on from the restored state.
	if res := e2.do(add{key(3), 5}, eskafka.SendOptions{}); !res.Accepted() || res.State.Total != 6 {
		t.Fatalf("add after restore: %+v", res.Outcome)
	}
	e2.stop()

	// Store intact: nothing to read back.
	e3 := start(t, cfg)
	e3.waitReady()
	if got := e3.proc.Restored(); got != 0 {
		t.Fatalf("restart with an intact store restored %d records, want 0", got)
	}
	// A copy of the store from now misses what e3 writes next: started
	// on that copy, an instance reads back only that tail.
	older := cfg.Store.(*memstore.Store).Clone()
	e3.do(add{key(7), 1}, eskafka.SendOptions{})
	e3.do(add{key(8), 1}, eskafka.SendOptions{})
	e3.do(shut{key(9)}, eskafka.SendOptions{})
	e3.stop()

	cfg.Store = older
	e4 := start(t, cfg)
	e4.waitReady()
	if got := e4.proc.Restored(); got != 6 {
		t.Fatalf("restart on an older store restored %d records, want the 3 changelog and 3 event records of the tail", got)
	}
	if c, err := e4.proc.Get(key(8)); err != nil || c.Total != 2 {
		t.Fatalf("after tail restore %s = %+v, %v", key(8), c, err)
	}
	if _, err := e4.proc.Get(key(9)); !errors.Is(err, eskafka.ErrNotFound) {
		t.Fatalf("tombstone of the tail not applied: %v", err)
	}
}

// A store that claims more than its changelog holds (the topics were
// recreated) is rebuilt rather than trusted.
func TestRestoreStoreAheadOfTopic(t *testing.T) {
	cfg := newConfig(t)
	ms := cfg.Store.(*memstore.Store)
	var b store.Batch
	b.Put("s/ghost", []byte(`{"id":"ghost","total":1,"version":1}`))
	for p := range int32(partitions) {
		b.SetOffset(eskafka.AggregateTopics(cfg.Service, "counters").Changelog, p, 1000)
	}
	if err := ms.Apply(&b); err != nil {
		t.Fatal(err)
	}
	e := start(t, cfg)
	e.waitReady()
	if _, err := e.proc.Get("ghost"); !errors.Is(err, eskafka.ErrNotFound) {
		t.Fatalf("state from another history survived: %v", err)
	}
	if res := e.do(open{"ghost"}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open after rebuild: %+v", res.Outcome)
	}
}

// Existing topics with the wrong partition count or cleanup policy stop
// the service with an error that names them.
func TestTopicMismatch(t *testing.T) {
	cfg := newConfig(t)
	ensureTopics(t, cfg)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	rf := kafkatest.ReplicationFactor(t, cfg.Brokers)
	if err := eskafka.EnsureTopics(ctx, cl, partitions, rf, topics.Specs()...); err != nil {
		t.Fatalf("matching topics refused: %v", err)
	}
	err = eskafka.EnsureTopics(ctx, cl, partitions+1, rf, topics.Specs()...)
	if err == nil || !strings.Contains(err.Error(), topics.Events+" has 3 partitions, want 4") {
		t.Fatalf("partition mismatch error = %v", err)
	}
	other := eskafka.AggregateTopics(cfg.Service, "others")
	if _, err := adm.CreateTopic(ctx, partitions, rf, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, other.Changelog); err != nil {
		t.Fatal(err)
	}
	err = eskafka.EnsureTopics(ctx, cl, partitions, rf, other.Specs()...)
	if err == nil || !strings.Contains(err.Error(), other.Changelog+" has cleanup.policy=delete, want compact") {
		t.Fatalf("cleanup policy mismatch error = %v", err)
	}
	// The settings of created topics are those of docs/architecture.md
	// ("Topics").
	configs, err := adm.DescribeTopicConfigs(ctx, topics.Events, topics.Changelog, topics.Commands, topics.Results)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		topics.Events:    {"cleanup.policy": "delete", "retention.ms": "-1"},
		topics.Changelog: {"cleanup.policy": "compact", "retention.ms": "-1"},
		topics.Commands:  {"cleanup.policy": "delete", "retention.ms": "604800000"},
		topics.Results:   {"cleanup.policy": "delete", "retention.ms": "86400000"},
	}
	for _, rc := range configs {
		got := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				got[c.Key] = *c.Value
			}
		}
		for k, v := range want[rc.Name] {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", rc.Name, k, got[k], v)
			}
		}
	}
}

// A command sent twice with the same msgId and the idempotent mark applies
// once; the retry gets the first outcome.
func TestIdempotentRetry(t *testing.T) {
	e := start(t, newConfig(t))
	e.do(open{"x"}, eskafka.SendOptions{})
	msg := ids.FromName("counters", "x", "client-key-1")
	first := e.do(add{"x", 10}, eskafka.SendOptions{MsgID: msg, Idempotent: true})
	if !first.Accepted() || first.State.Total != 10 {
		t.Fatalf("first: %+v", first.Outcome)
	}
	// The retry must be answered from the results topic anew, not from
	// the follower's memory: wait on a fresh follower.
	e.stop()
	e2 := start(t, e.cfg)
	ctx := context.Background()
	if _, err := e2.gw.Send(ctx, add{"x", 10}, eskafka.SendOptions{MsgID: msg, Idempotent: true}); err != nil {
		t.Fatal(err)
	}
	e2.do(add{"x", 1}, eskafka.SendOptions{}) // a later command, after the retry
	c, err := e2.proc.Get("x")
	if err != nil || c.Total != 11 || c.Version != 3 {
		t.Fatalf("after retry state = %+v, %v; want total 11 version 3", c, err)
	}
	results := readAll(t, e.cfg.Brokers, e.proc.Topics().Results)
	var n int
	for _, r := range results {
		if header(r, eskafka.HeaderMsgID) == msg {
			n++
			o, err := eskafka.DefaultOutcomeCodec().Decode(r.Value)
			if err != nil || !o.Accepted() || o.Version != 2 {
				t.Fatalf("outcome of retry = %+v, %v; want the first (accepted at version 2)", o, err)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d outcomes for the retried msgId, want 2 (one per send)", n)
	}
	if events := readAll(t, e.cfg.Brokers, e.proc.Topics().Events); len(events) != 3 {
		t.Fatalf("%d events, want 3 (open, add, add 1)", len(events))
	}
}

// An undecodable command is rejected, logged, and processing goes on.
func TestPoisonCommand(t *testing.T) {
	e := start(t, newConfig(t))
	ctx := context.Background()
	bad := []*kgo.Record{
		{Topic: e.proc.Topics().Commands, Key: []byte("p"), Value: []byte("not json"), Headers: []kgo.RecordHeader{{Key: "msgId", Value: []byte("bad-1")}}},
		{Topic: e.proc.Topics().Commands, Key: []byte("p"), Value: []byte(`{"type":"nope"}`), Headers: []kgo.RecordHeader{{Key: "msgId", Value: []byte("bad-2")}}},
		{Topic: e.proc.Topics().Commands, Key: []byte("other"), Value: []byte(`{"type":"open","id":"p"}`), Headers: []kgo.RecordHeader{{Key: "msgId", Value: []byte("bad-3")}}},
		{Topic: e.proc.Topics().Commands, Key: []byte("p"), Value: []byte(`{"type":"open","id":"p"}`), Headers: []kgo.RecordHeader{{Key: "msgId", Value: []byte("bad-4")}, {Key: "expectedVersion", Value: []byte("x")}}},
	}
	if err := e.producer.ProduceSync(ctx, bad...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i := range bad {
		msg := fmt.Sprintf("bad-%d", i+1)
		res, err := e.gw.Await(ctx, eskafka.Sent{MsgID: msg})
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted() || res.Rejection.Code != es.CodeMalformedCommand {
			t.Fatalf("%s: %+v", msg, res.Outcome)
		}
	}
	if res := e.do(open{"p"}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("processing stopped after poison input: %+v", res.Outcome)
	}
}

// Optimistic concurrency: a stale expected version is rejected.
func TestExpectedVersion(t *testing.T) {
	e := start(t, newConfig(t))
	e.do(open{"v"}, eskafka.SendOptions{})
	one, two := int64(1), int64(2)
	if res := e.do(add{"v", 1}, eskafka.SendOptions{ExpectedVersion: &one}); !res.Accepted() {
		t.Fatalf("matching version: %+v", res.Outcome)
	}
	res := e.do(add{"v", 1}, eskafka.SendOptions{ExpectedVersion: &one})
	if res.Accepted() || res.Rejection.Code != es.CodeVersionMismatch || res.Version != two {
		t.Fatalf("stale version: %+v", res.Outcome)
	}
}
