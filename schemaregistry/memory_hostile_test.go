package schemaregistry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// Found by a review for unbounded memory growth; failed before its fix.

// The registry remembered why every fingerprint without a schema had none
// (the invalid record under it, the tombstone that removed it), for good:
// each record with a new key, a tombstone or a few bytes of junk, grew
// every instance's registry by an entry, even after compaction had dropped
// the tombstones from the topic. It remembers the reasons of the last
// MaxExplained of each kind now; an older one is told as not in the topic.
func TestForgottenFingerprintsAreBounded(t *testing.T) {
	addrs, ctx := brokers(t), ctxT(t)
	topic := topicName(t, addrs)
	r := newRegistry(t, addrs, topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := schemaregistry.MaxExplained + 500
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Key: schemaregistry.Key(uint64(1000 + i)), Value: nil}, nil)              // a tombstone
		cl.Produce(ctx, &kgo.Record{Key: schemaregistry.Key(uint64(1_000_000 + i)), Value: []byte("x")}, nil) // junk
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := schemaregistry.Explained(r); got > 2*schemaregistry.MaxExplained {
		t.Errorf("after %d tombstones and %d junk records under new keys the registry remembers %d fingerprints, more than %d",
			n, n, got, 2*schemaregistry.MaxExplained)
	}
	// The latest are still explained, and the registry goes on working.
	if _, err := r.Lookup(ctx, uint64(1000+n-1)); !errors.Is(err, avro.ErrUnknownSchema) || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("Lookup of the last tombstone's fingerprint: %v", err)
	}
	if _, err := r.Lookup(ctx, uint64(1_000_000+n-1)); !errors.Is(err, avro.ErrUnknownSchema) || !strings.Contains(err.Error(), "invalid record") {
		t.Errorf("Lookup of the last junk record's fingerprint: %v", err)
	}
	if _, err := r.Register(context.WithoutCancel(ctx), schemaA); err != nil {
		t.Fatal(err)
	}
}
