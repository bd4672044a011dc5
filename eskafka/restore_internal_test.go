package eskafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/memstore"
)

// A restore whose fetches keep failing in a way the client retries by
// itself reads nothing, forever. It used to wait for as long as its
// context, which for a stage is its whole life: the stage stopped without
// a word, holding its partitions. Now it fails after the stall timeout,
// saying what it still had to read, and the stage's session starts again.
func TestRestoreFailsWhenItReadsNothing(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "svc.things.changelog"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const topic = "svc.things.changelog"
	produce := func(keys ...string) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for _, k := range keys {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte(k), Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := Config{Brokers: c.ListenAddrs(), Store: memstore.New(), StallTimeout: time.Second}
	cfg.defaults()
	var applied int
	apply := func(*store.Batch, *kgo.Record) { applied++ }
	drop := func(string, int32) error { return nil }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	produce("a", "b", "c")
	if n, err := restore(ctx, cfg, []string{topic}, []int32{0}, apply, drop, nil); err != nil || n != 3 {
		t.Fatalf("restore of a partition that answers: %d records, %v; want 3, nil", n, err)
	}

	produce("d", "e")
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		fetch := req.(*kmsg.FetchRequest)
		resp := fetch.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range fetch.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.NotLeaderForPartition.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	start := time.Now()
	n, err := restore(ctx, cfg, []string{topic}, []int32{0}, apply, drop, nil)
	if !errors.Is(err, errRestoreStalled) {
		t.Fatalf("restore of a partition whose fetches all fail: %d records, %v (after %v); want it to give up as stalled", n, err, time.Since(start).Round(time.Millisecond))
	}
	if want := topic + "/0 up to 5"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say what was left to read (%s)", err, want)
	}
}

// A restore waits for a transaction open on the changelog to end, and reads
// what it committed. It used to read up to the transaction and let the
// stage serve the partition: a write whose outcome was already read (the
// transaction committed, its marker not yet on the changelog, as after the
// whole cluster restarted) was missing from the store, and a book of an
// author acknowledged moments before was refused as "author does not
// exist" (the chaos test, 2026-12-02).
func TestRestoreWaitsForAnOpenTransaction(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	service := kafkatest.Service(t)
	topic := service + ".things.changelog"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.TransactionalID(service+".things.previous-owner"))
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if _, err := kadm.NewClient(owner).CreateTopic(ctx, 1, kafkatest.ReplicationFactor(t, brokers), nil, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	write := func(key string, commit bool) {
		t.Helper()
		if err := owner.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := owner.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := owner.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("a", true)
	write("b", false) // produced, left open

	cfg := Config{Brokers: brokers, Store: memstore.New(), StallTimeout: 10 * time.Second}
	cfg.defaults()
	var keys []string
	apply := func(_ *store.Batch, r *kgo.Record) { keys = append(keys, string(r.Key)) }
	drop := func(string, int32) error { return nil }
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := restore(ctx, cfg, []string{topic}, []int32{0}, apply, drop, nil)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("restore returned (%d records: %v, %v) while a transaction was open on the changelog", r.n, keys, r.err)
	case <-time.After(time.Second):
	}
	if err := owner.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.n != 2 || strings.Join(keys, ",") != "a,b" {
		t.Fatalf("restore after the commit: %d records %v, %v; want a and b", r.n, keys, r.err)
	}

	// A transaction that stays open past the stall timeout fails the
	// restore, saying where.
	write("c", false)
	cfg.StallTimeout = time.Second
	_, err = restore(ctx, cfg, []string{topic}, []int32{0}, apply, drop, nil)
	if !errors.Is(err, errRestoreStalled) || !strings.Contains(err.Error(), topic+"/0") {
		t.Fatalf("restore with a transaction open past the stall timeout: %v; want it stalled, naming %s/0", err, topic)
	}
}
