package eskafka_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/memstore"
)

// Records on the changelog and events topics that a restore reads, as
// anyone with write access could write them; found by a review, each test
// failed before its fix.

// A state record written to another changelog partition than its key
// hashes to is left out by a restore, as the same record on the commands
// topic is refused: kept, the key's state lives on two changelog partitions
// and a cold restore keeps whichever it reads last, here undoing a write
// acknowledged after it.
func TestRestoreLeavesOutAMisplacedChangelogRecord(t *testing.T) {
	cfg := newConfig(t)
	k := ""
	for i := 0; ; i++ {
		if k = key(i); eskafka.PartitionFor(k, cfg.Partitions) == 0 {
			break
		}
	}
	e := start(t, cfg)
	e.waitReady()
	if res := e.do(open{k}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open: %+v", res.Outcome)
	}
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	forged, _, _ := codecs.State.Encode(counter{ID: k, Total: 999, Version: 1})
	produceRaw(t, cfg, &kgo.Record{Topic: topics.Changelog, Partition: 2, Key: []byte(k), Value: forged})
	if res := e.do(add{k, 5}, eskafka.SendOptions{}); !res.Accepted() || res.State.Total != 5 {
		t.Fatalf("add: %+v", res.Outcome)
	}
	e.stop()

	cfg.Store = memstore.New() // a cold start: new disk, or the partitions moved here
	e2 := start(t, cfg)
	e2.waitReady()
	if s, _ := storeState(t, cfg.Store, k); s.Total != 5 || s.Version != 2 {
		t.Fatalf("after a restore %s is %+v; the acknowledged state was total 5, version 2", k, s)
	}
}

// batchMeter records the largest batch applied to the store, in bytes.
type batchMeter struct {
	store.Store
	mu  sync.Mutex
	max int
}

func (m *batchMeter) Apply(b *store.Batch) error {
	n := 0
	for _, op := range b.Ops {
		n += len(op.Key) + len(op.Value)
	}
	m.mu.Lock()
	m.max = max(m.max, n)
	m.mu.Unlock()
	return m.Store.Apply(b)
}

// 150 events of ~900 KB on the events topic (well formed but for their
// size; no position header, like events written before positions): a
// cold start indexes them, holding every one in a single store batch: a
// restore applies its batch every 4,096 operations, whatever their bytes
// (4,096 x 1 MiB records: several GiB).
func TestRestoreBatchBoundedInBytes(t *testing.T) {
	cfg := newConfig(t)
	e := start(t, cfg)
	e.waitReady()
	e.stop()
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	payload := strings.Repeat("z", 900<<10)
	for i := range 150 {
		value, typ, _ := codecs.Event.Encode(padded{Text: payload})
		k := fmt.Sprintf("k%d", i)
		produceRaw(t, cfg, &kgo.Record{Topic: topics.Events, Partition: eskafka.PartitionFor(k, cfg.Partitions), Key: []byte(k), Value: value,
			Headers: []kgo.RecordHeader{{Key: eskafka.HeaderMsgID, Value: []byte(ids.New())}, {Key: eskafka.HeaderType, Value: []byte(typ)}, {Key: eskafka.HeaderVersion, Value: []byte("1")}}})
	}
	m := &batchMeter{Store: memstore.New()}
	cfg.Store = m
	e2 := start(t, cfg)
	e2.waitReady()
	if m.max > 64<<20 {
		t.Fatalf("a restore held a batch of %d MiB in memory", m.max>>20)
	}
}
