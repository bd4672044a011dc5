package schemaregistry_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/schemaregistry"
)

// Hostile writes to the registry topic, found by a review; each test
// failed before its fix.

// A transaction left open on the registry topic (a crashed or hostile
// transactional producer) held the last stable offset back, and a schema
// registered after it was unknown to every other registry for up to
// transaction.max.timeout.ms: the records written with it were rejected
// for good as undecodable.
func TestOpenTransactionOnTheTopicHidesNoSchema(t *testing.T) {
	addrs, ctx := brokers(t), ctxT(t)
	topic := topicName(t, addrs)
	reader, writer := newRegistry(t, addrs, topic), newRegistry(t, addrs, topic)
	txn, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.TransactionalID("hanging-"+topic))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("never committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fp, err := writer.Register(ctx, schemaA)
	if err != nil {
		t.Fatal(err)
	}
	if js, err := reader.Lookup(ctx, fp); err != nil || js != schemaA {
		t.Fatalf("a schema registered behind an open transaction: %q, %v", js, err)
	}
}

// "The first record for a fingerprint wins" held only until compaction,
// which keeps a key's last record: one junk or conflicting record under a
// registered fingerprint removed (or changed) the schema for every
// registry started after it. A registry that reads such a record writes
// the schema it holds again, so that the last record is the schema.
func TestBadRecordAfterASchemaIsOverwritten(t *testing.T) {
	for name, bad := range map[string][]byte{"junk": []byte("junk"), "conflicting JSON": []byte(schemaA3)} {
		t.Run(name, func(t *testing.T) {
			addrs, ctx := brokers(t), ctxT(t)
			topic := topicName(t, addrs)
			r := newRegistry(t, addrs, topic)
			fp, err := r.Register(ctx, schemaA)
			if err != nil {
				t.Fatal(err)
			}
			key := schemaregistry.Key(fp)
			produce(t, addrs, topic, key, bad)
			if err := r.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				var last []byte
				for _, rec := range readAll(t, addrs, topic) {
					if bytes.Equal(rec.Key, key) {
						last = rec.Value
					}
				}
				if string(last) == schemaA {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the last record for the schema's fingerprint is %q; compaction would keep it instead of the schema", last)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if js, err := newRegistry(t, addrs, topic).Lookup(ctx, fp); err != nil || js != schemaA {
				t.Fatalf("a registry started after: %q, %v", js, err)
			}
		})
	}
}
