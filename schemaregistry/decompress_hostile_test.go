package schemaregistry_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// A zstd batch of a few KiB that decompresses past the client's bound
// (kgo.MaxDecompressBatchBytes: 1 GiB by default, a service sets
// eskafka.MaxBatchBytes; here 1 MiB) on the registry topic: the registry's
// consumer stopped fetching the topic at it, and every catch-up failed
// with the fetch error, so a registry could not start, nor find a schema
// registered after the batch.
func TestBatchDecompressingPastTheBoundIsSkipped(t *testing.T) {
	addrs, ctx := brokers(t), ctxT(t)
	topic := topicName(t, addrs)
	bound := schemaregistry.WithClientOpts(kgo.MaxDecompressBatchBytes(1 << 20))
	w := newRegistry(t, addrs, topic, bound)
	kafkatest.ProduceBatch(t, addrs, topic, 0, kafkatest.ZstdBatch(kafkatest.ZstdRecords([]byte("bomb"), 4<<20)))
	fp, err := w.Register(ctx, schemaA)
	if err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, addrs, topic, bound)
	if js, err := r.Lookup(ctx, fp); err != nil || js != schemaA {
		t.Fatalf("a schema registered after the batch: %q, %v", js, err)
	}
}
