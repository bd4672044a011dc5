package schemaregistry_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/avro"
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
	// Keyed: a compacted topic refuses a record without a key.
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("hanging"), Value: []byte("never committed")}).FirstErr(); err != nil {
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

// A registry topic deleted and created again (an operator's mistake) was
// never read again by a running registry: the new topic's end was below
// where it had read to (or, longer, held other records at the offsets it
// had read), so it read nothing; and it trusted its memory when asked to
// register, writing nothing, so that its records used schemas the new
// topic did not have. Now it reads the new topic from the start and writes
// its own schemas again.
func TestRecreatedTopicIsReadAgain(t *testing.T) {
	others := map[string][]string{
		"shorter": {schemaA},
		"longer":  {schemaA, `{"type":"record","name":"R3","fields":[]}`, `{"type":"record","name":"R4","fields":[]}`, `{"type":"record","name":"R5","fields":[]}`},
	}
	for name, schemas := range others {
		t.Run(name, func(t *testing.T) {
			addrs, ctx := brokers(t), ctxT(t)
			topic := topicName(t, addrs)
			old := newRegistry(t, addrs, topic)
			mine, err := old.Register(ctx, schemaB)
			if err != nil {
				t.Fatal(err)
			}
			for _, js := range []string{`{"type":"record","name":"R1","fields":[]}`, `{"type":"record","name":"R2","fields":[]}`} {
				if _, err := old.Register(ctx, js); err != nil {
					t.Fatal(err)
				}
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if _, err := kadm.NewClient(cl).DeleteTopics(ctx, topic); err != nil {
				t.Fatal(err)
			}
			var fresh *schemaregistry.Registry
			for deadline := time.Now().Add(20 * time.Second); ; {
				// The deletion takes a moment to reach every broker.
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				fresh, err = schemaregistry.New(ctx, addrs, topic, quiet())
				cancel()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			t.Cleanup(fresh.Close)
			var theirs uint64
			for _, js := range schemas {
				if theirs, err = fresh.Register(ctx, js); err != nil {
					t.Fatal(err)
				}
			}
			// A look-up may fail at once while the clients learn the
			// new topic (an error the caller retries, not "unknown").
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				js, err := old.Lookup(ctx, theirs)
				if err == nil && js == schemas[len(schemas)-1] {
					break
				}
				if errors.Is(err, avro.ErrUnknownSchema) || err == nil || time.Now().After(deadline) {
					t.Fatalf("the running registry, of a schema in the new topic: %q, %v", js, err)
				}
			}
			if js, err := fresh.Lookup(ctx, mine); err != nil || js != schemaB {
				t.Fatalf("the new registry, of a schema the running one had registered: %q, %v", js, err)
			}
		})
	}
}
