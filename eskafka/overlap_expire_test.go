package eskafka_test

import (
	"context"
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/memstore"
)

// putTransform writes each input's value under its key in its table.
type putTransform struct{ table *eskafka.Table }

func (p putTransform) Handle(tx *eskafka.Tx, r *kgo.Record) error {
	tx.Put(p.table, string(r.Key), r.Value)
	return nil
}

// sweepRaceStore lets the test interleave an expiry sweep with the apply
// of a commit, as the scheduler may: once armed, the apply of a batch that
// writes key waits (a while) for a sweep's scan that reads key's time, and
// that scan hands its entries to the sweep only once the apply is done.
type sweepRaceStore struct {
	store.Store
	key string

	mu      sync.Mutex
	armed   bool
	waiting bool          // an apply of key waits for a scan
	scanned chan struct{} // closed by the scan that read key's time
	applied chan struct{} // closed once that apply is done
}

const expiryKeyPrefix = "\x00expiry/"

func (s *sweepRaceStore) Apply(b *store.Batch) error {
	s.mu.Lock()
	engage := s.armed && putsKey(b, s.key)
	if engage {
		s.armed, s.waiting = false, true
	}
	s.mu.Unlock()
	if !engage {
		return s.Store.Apply(b)
	}
	select {
	case <-s.scanned:
	case <-time.After(3 * time.Second):
	}
	err := s.Store.Apply(b)
	close(s.applied)
	return err
}

func putsKey(b *store.Batch, key string) bool {
	for _, op := range b.Ops {
		if op.Key == key && !op.Delete {
			return true
		}
	}
	return false
}

func (s *sweepRaceStore) Scan(prefix, after string, fn func(string, []byte) bool) error {
	s.mu.Lock()
	engage := s.waiting && strings.HasPrefix(prefix, expiryKeyPrefix)
	if engage {
		s.waiting = false
	}
	s.mu.Unlock()
	if !engage {
		return s.Store.Scan(prefix, after, fn)
	}
	type kv struct {
		k string
		v []byte
	}
	var snap []kv
	err := s.Store.Scan(prefix, after, func(k string, v []byte) bool {
		snap = append(snap, kv{k, append([]byte(nil), v...)})
		return true
	})
	close(s.scanned)
	select {
	case <-s.applied:
	case <-time.After(3 * time.Second):
	}
	for _, e := range snap {
		if !fn(e.k, e.v) {
			break
		}
	}
	return err
}

// With overlapping transactions, an entry written again by a batch whose
// commit is still reaching the store is not deleted by an expiry sweep that
// read its former time: the sweep runs only once the lane's commits have
// reached the store, as it did when it ran between two batches. Before, a
// sweep could run while the last batch's commit was applied from another
// goroutine, and delete the entry it had just written (the store then
// lacked a write the changelog holds, and its offset was past it).
func TestOverlapExpirySweepKeepsAnEntryJustWritten(t *testing.T) {
	cfg := newConfig(t)
	cfg.Overlap = true
	cfg = eskafka.ShortExpiry(cfg, time.Hour, 10*time.Millisecond)
	p := cfg.Service + ".ttl."
	in, changelog := p+"in", p+"changelog"
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := eskafka.EnsureTopics(ctx, cl, partitions, kafkatest.ReplicationFactor(t, cfg.Brokers),
		eskafka.TopicSpec{Name: in, Configs: map[string]string{"cleanup.policy": "delete"}}, eskafka.TopicSpec{Name: changelog, Configs: map[string]string{"cleanup.policy": "delete"}}); err != nil {
		t.Fatal(err)
	}
	const retention = 2 * time.Second
	table := &eskafka.Table{Prefix: "t/", Topic: changelog, Retention: retention}
	rs := &sweepRaceStore{Store: memstore.New(), key: "t/0000/k", scanned: make(chan struct{}), applied: make(chan struct{})}
	cfg.Store = rs
	stage := eskafka.NewStage(eskafka.StageSpec{
		Name: "ttl", Inputs: []string{in}, Tables: []*eskafka.Table{table}, Transform: putTransform{table},
	}, cfg)
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = stage.Run(sctx) }()
	t.Cleanup(func() { stop(); <-done })
	waitFor(t, "the stage to be ready", stage.Ready)

	produce := func(v string) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: in, Partition: 0, Key: []byte("k"), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	stamp := func() (time.Time, bool) {
		v, ok, err := rs.Store.Get(expiryKeyPrefix + "t/0000/k")
		if err != nil || !ok || len(v) != 8 {
			return time.Time{}, false
		}
		return time.UnixMilli(int64(binary.BigEndian.Uint64(v))), true
	}
	produce("v1")
	waitFor(t, "v1 in the store", func() bool { _, ok := stamp(); return ok })
	written, _ := stamp()
	// v2 is decided while v1 is still fresh; the next sweep, about an
	// idle poll later, finds v1's time past the retention.
	time.Sleep(time.Until(written.Add(retention - 400*time.Millisecond)))
	rs.mu.Lock()
	rs.armed = true
	rs.mu.Unlock()
	produce("v2")
	select {
	case <-rs.applied:
	case <-time.After(10 * time.Second):
		t.Fatal("v2 never reached the store")
	}
	time.Sleep(200 * time.Millisecond) // let the sweep finish
	v, ok, err := rs.Store.Get("t/0000/k")
	if err != nil || !ok || string(v) != "v2" {
		t.Fatalf("the store holds %q, %v, %v for the entry v2 just wrote; want v2 (an expiry sweep deleted it)", v, ok, err)
	}
	if _, ok := stamp(); !ok {
		t.Fatal("the entry v2 just wrote has lost its time")
	}
}
