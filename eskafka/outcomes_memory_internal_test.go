package eskafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// heldBytes is what the follower keeps in memory, counted from what it
// holds: the outcomes, the fingerprints beside them (prints) and the
// reused rejections, keys and values.
func (o *Outcomes) heldBytes() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n int64
	for k, out := range o.recent {
		n += int64(len(k)) + outcomeBytes(out)
	}
	for k, fp := range o.prints {
		n += int64(len(k) + len(fp))
	}
	for k, out := range o.reused {
		n += int64(len(k)) + outcomeBytes(out)
	}
	return n
}

// Records anyone who may write a results topic can write, found by a
// review: outcomes with a 256 KiB fingerprint header (kept beside the
// outcome, not counted), and idempotency_key_reused rejections with a
// 256 KiB state and msgId (kept by count only). The follower held 17 MiB
// for a bound of 1 MiB; it must stay near OutcomeCacheBytes.
func TestOutcomesMemoryBoundedByBytes(t *testing.T) {
	const topic = "svc.things.results"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := Config{Brokers: c.ListenAddrs(), OutcomeCacheBytes: 1 << 20}
	o, err := NewOutcomes(cfg, topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() { _ = o.Run(ctx) }()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	big := strings.Repeat("f", 256<<10)
	fingerprint := strings.Repeat("p", 32)
	const n = 40
	for i := range n {
		v := fmt.Sprintf(`{"msgId":"fp-%d","key":"k","status":"accepted"}`, i)
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(v),
			Headers: []kgo.RecordHeader{{Key: HeaderFingerprint, Value: []byte(big)}}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		v = fmt.Sprintf(`{"msgId":"re-%d-%s","key":"k","status":"rejected","state":"%s","error":{"code":"idempotency_key_reused","message":"x"}}`,
			i, big, strings.Repeat("A", 256<<10))
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(v),
			Headers: []kgo.RecordHeader{{Key: HeaderFingerprint, Value: []byte(fingerprint)}}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The last record read is an accepted outcome after them all.
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(`{"msgId":"last","key":"k","status":"accepted"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for {
		o.mu.Lock()
		_, done := o.recent["last"]
		o.mu.Unlock()
		if done {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the follower did not read the records")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if held := o.heldBytes(); held > 2*cfg.OutcomeCacheBytes {
		t.Fatalf("the follower holds %d KiB for a bound of %d KiB", held>>10, cfg.OutcomeCacheBytes>>10)
	}
}
