package schemaregistry_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/internal/catalogavro"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// brokers returns the brokers to test against: $KAFKA_BROKERS (a real
// cluster; scripts/test runs this package on Apache Kafka that way) when
// set, else a fresh in-process kfake broker.
func brokers(t *testing.T) []string {
	t.Helper()
	return kafkatest.Brokers(t)
}

var unsafeTopicChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// topicName returns a topic name unique to the test (and run), deleted
// after it.
func topicName(t *testing.T, addrs []string) string {
	t.Helper()
	name := fmt.Sprintf("test.schemas.%s.%d", unsafeTopicChars.ReplaceAllString(t.Name(), "_"), time.Now().UnixNano())
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, name)
	})
	return name
}

func quiet() schemaregistry.Option {
	return schemaregistry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func newRegistry(t *testing.T, addrs []string, topic string, opts ...schemaregistry.Option) *schemaregistry.Registry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := schemaregistry.New(ctx, addrs, topic, append([]schemaregistry.Option{quiet()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const (
	schemaA  = `{"type":"record","name":"AuthorCreated","namespace":"catalog.author","fields":[{"name":"code","type":"string"}]}`
	schemaA2 = `{ "namespace":"catalog.author", "name":"AuthorCreated", "type":"record",
	              "fields":[ {"type":"string", "name":"code"} ] }` // the same JSON value
	schemaA3 = `{"type":"record","name":"AuthorCreated","namespace":"catalog.author","fields":[{"name":"code","type":"string","default":"x"}]}` // same canonical form
	schemaB  = `{"type":"record","name":"AuthorDeleted","namespace":"catalog.author","fields":[{"name":"code","type":"string"}]}`
)

func fingerprint(t *testing.T, js string) uint64 {
	t.Helper()
	s, err := avro.ParseSchema(js)
	if err != nil {
		t.Fatal(err)
	}
	return s.Fingerprint()
}

// readAll returns the records of the topic.
func readAll(t *testing.T, addrs []string, topic string) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	end, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := end.Lookup(topic, 0)
	var out []*kgo.Record
	for next := int64(0); next < o.Offset; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			next = r.Offset + 1
		})
	}
	return out
}

func produce(t *testing.T, addrs []string, topic string, key, value []byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Key: key, Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestTopicCreated(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	r := newRegistry(t, addrs, topic)
	if r.Topic() != topic {
		t.Errorf("Topic() = %q", r.Topic())
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addrs...))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := ctxT(t)
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details[topic].Partitions); n != 1 {
		t.Errorf("%d partitions", n)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range cfg.Configs {
		if c.Value != nil {
			got[c.Key] = *c.Value
		}
	}
	if got["cleanup.policy"] != "compact" || got["retention.ms"] != "-1" {
		t.Errorf("cleanup.policy=%s retention.ms=%s", got["cleanup.policy"], got["retention.ms"])
	}
	// A second registry on the same topic accepts it as it is.
	newRegistry(t, addrs, topic)
}

func TestTopicRefused(t *testing.T) {
	addrs := brokers(t)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addrs...))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name       string
		partitions int32
		policy     string
		want       string
	}{
		{"partitions", 3, "compact", "it has 3 partitions, want 1"},
		{"policy", 1, "delete", "cleanup.policy is delete, want compact"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := topicName(t, addrs)
			if _, err := adm.CreateTopic(ctx, tc.partitions, -1, map[string]*string{
				"cleanup.policy": kadm.StringPtr(tc.policy), "retention.ms": kadm.StringPtr("-1"),
			}, topic); err != nil {
				t.Fatal(err)
			}
			_, err := schemaregistry.New(ctx, addrs, topic, quiet())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), topic) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestRegisterAndLookup(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	ctx := ctxT(t)
	r1 := newRegistry(t, addrs, topic)
	fp, err := r1.Register(ctx, schemaA)
	if err != nil {
		t.Fatal(err)
	}
	if want := fingerprint(t, schemaA); fp != want {
		t.Errorf("fingerprint %x, want %x", fp, want)
	}
	if js, err := r1.Lookup(ctx, fp); err != nil || js != schemaA {
		t.Errorf("Lookup = %q, %v", js, err)
	}
	// Idempotent: registering again, also as an equal JSON value, writes
	// nothing.
	for _, js := range []string{schemaA, schemaA2} {
		if fp2, err := r1.Register(ctx, js); err != nil || fp2 != fp {
			t.Errorf("Register again = %x, %v", fp2, err)
		}
	}
	// A new instance reads the topic at start.
	r2 := newRegistry(t, addrs, topic)
	if js, err := r2.Lookup(ctx, fp); err != nil || js != schemaA {
		t.Errorf("new instance: Lookup = %q, %v", js, err)
	}
	if _, err := r2.Register(ctx, schemaA); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, addrs, topic)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	// The record: key = fingerprint, 8 bytes big-endian; value = the JSON.
	if k := recs[0].Key; len(k) != 8 || binary.BigEndian.Uint64(k) != fp {
		t.Errorf("key % x, want %016x big-endian", k, fp)
	}
	if string(recs[0].Value) != schemaA {
		t.Errorf("value %s", recs[0].Value)
	}
	all, err := r2.All(ctx)
	if err != nil || len(all) != 1 || all[fp] != schemaA {
		t.Errorf("All = %v, %v", all, err)
	}
}

// An instance that meets a fingerprint registered after it started catches
// up on the topic.
func TestLookupCatchesUp(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	ctx := ctxT(t)
	reader := newRegistry(t, addrs, topic)
	writer := newRegistry(t, addrs, topic)
	if _, err := writer.Register(ctx, schemaB); err != nil { // some history first
		t.Fatal(err)
	}
	fp, err := writer.Register(ctx, schemaA)
	if err != nil {
		t.Fatal(err)
	}
	js, err := reader.Lookup(ctx, fp)
	if err != nil || js != schemaA {
		t.Fatalf("Lookup = %q, %v", js, err)
	}
	// Many concurrent look-ups of new fingerprints share catch-ups.
	var fps []uint64
	for i := range 5 {
		js := fmt.Sprintf(`{"type":"record","name":"R%d","fields":[]}`, i)
		fp, err := writer.Register(ctx, js)
		if err != nil {
			t.Fatal(err)
		}
		fps = append(fps, fp)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := reader.Lookup(ctx, fps[i%len(fps)]); err != nil {
				t.Error(err)
			}
			if _, err := reader.Lookup(ctx, 42); !errors.Is(err, avro.ErrUnknownSchema) {
				t.Errorf("unknown: %v", err)
			}
		})
	}
	wg.Wait()
}

func TestLookupUnknown(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	r := newRegistry(t, addrs, topic)
	ctx := ctxT(t)
	if _, err := r.Register(ctx, schemaA); err != nil {
		t.Fatal(err)
	}
	_, err := r.Lookup(ctx, 0x0123456789abcdef)
	if !errors.Is(err, avro.ErrUnknownSchema) || !strings.Contains(err.Error(), "0123456789abcdef") || !strings.Contains(err.Error(), topic) {
		t.Fatalf("err = %v", err)
	}
	// A canceled look-up is not "unknown": it may succeed later.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Lookup(cctx, 0x0123456789abcdef); err == nil || errors.Is(err, avro.ErrUnknownSchema) || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

// A fingerprint stands for one JSON: a different JSON with the same
// canonical form (here a default) is refused, also by another instance.
func TestConflict(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	ctx := ctxT(t)
	r1 := newRegistry(t, addrs, topic)
	r2 := newRegistry(t, addrs, topic)
	fp, err := r1.Register(ctx, schemaA)
	if err != nil {
		t.Fatal(err)
	}
	if fingerprint(t, schemaA3) != fp {
		t.Fatal("test schemas should share a fingerprint")
	}
	for _, r := range []*schemaregistry.Registry{r1, r2} {
		if _, err := r.Register(ctx, schemaA3); !errors.Is(err, schemaregistry.ErrConflict) {
			t.Errorf("err = %v, want ErrConflict", err)
		}
	}
	if n := len(readAll(t, addrs, topic)); n != 1 {
		t.Errorf("%d records", n)
	}
}

// The topic is a contract with other writers (a JVM service using Kaa, for
// one): records they write are read, invalid ones skipped, never guessed.
func TestForeignRecords(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	ctx := ctxT(t)
	r := newRegistry(t, addrs, topic)

	// What Kaa writes: key = LongSerializer(fingerprint) (8 bytes,
	// big-endian), value = Schema.toString() (Java's formatting).
	javaJSON := `{"type":"record","name":"AuthorDeleted","namespace":"catalog.author","fields":[{"name":"code","type":"string"}]}`
	fpB := fingerprint(t, javaJSON)
	produce(t, addrs, topic, schemaregistry.Key(fpB), []byte(javaJSON))
	// Invalid records.
	produce(t, addrs, topic, []byte("abc"), []byte(schemaA))                   // short key
	produce(t, addrs, topic, schemaregistry.Key(7), []byte(`{"type":"nope"}`)) // not a schema
	produce(t, addrs, topic, schemaregistry.Key(8), []byte(schemaA))           // key is not its fingerprint
	produce(t, addrs, topic, []byte("abc"), nil)                               // a tombstone with a short key
	fpA := fingerprint(t, schemaA)
	produce(t, addrs, topic, schemaregistry.Key(fpA), []byte(schemaA))
	produce(t, addrs, topic, schemaregistry.Key(fpA), []byte(schemaA3)) // a conflict: the first stays

	if js, err := r.Lookup(ctx, fpB); err != nil || js != javaJSON {
		t.Errorf("Kaa's record: %q, %v", js, err)
	}
	if js, err := r.Lookup(ctx, fpA); err != nil || js != schemaA {
		t.Errorf("conflicting records: %q, %v", js, err)
	}
	for _, fp := range []uint64{7, 8} {
		_, err := r.Lookup(ctx, fp)
		if !errors.Is(err, avro.ErrUnknownSchema) || !strings.Contains(err.Error(), "invalid record") {
			t.Errorf("Lookup(%d) = %v", fp, err)
		}
	}
	// A new instance reads the same.
	r2 := newRegistry(t, addrs, topic)
	all, err := r2.All(ctx)
	if err != nil || len(all) != 2 || all[fpA] != schemaA || all[fpB] != javaJSON {
		t.Errorf("All = %v, %v", all, err)
	}
	if _, err := r2.Register(ctx, schemaA3); !errors.Is(err, schemaregistry.ErrConflict) {
		t.Errorf("Register of a conflicting JSON: %v", err)
	}
}

func TestRegisterInvalid(t *testing.T) {
	addrs := brokers(t)
	r := newRegistry(t, addrs, topicName(t, addrs))
	if _, err := r.Register(ctxT(t), `{"type":"record"}`); err == nil {
		t.Fatal("registered an invalid schema")
	}
}

// End to end: codecs on the Kafka registry, and a reader process started
// later that meets an older writer's schema.
func TestCodecsOnKafka(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	ctx := ctxT(t)

	// An older service version wrote AuthorCreated with a field since
	// removed.
	old := newRegistry(t, addrs, topic)
	type AuthorCreated struct {
		Code      string `avro:"code"`
		FirstName string `avro:"firstName"`
		LastName  string `avro:"lastName"`
		Born      int32  `avro:"born"`
	}
	oldCodec, err := avro.NewUnion[any](old, "catalog.author", avro.Of[AuthorCreated]())
	if err != nil {
		t.Fatal(err)
	}
	if err := avro.Register(ctx, oldCodec); err != nil {
		t.Fatal(err)
	}
	oldFrame, _, err := oldCodec.Encode(AuthorCreated{Code: "jane-austen", FirstName: "Jane", LastName: "Austen", Born: 1775})
	if err != nil {
		t.Fatal(err)
	}

	// Today's service.
	reg := newRegistry(t, addrs, topic)
	codecs, err := catalogavro.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	events := codecs.AuthorEvents
	if err := avro.Register(ctx, events); err != nil {
		t.Fatal(err)
	}
	frame, typ, err := events.Encode(author.AuthorUpdated{Code: "jane-austen", FirstName: "J.", LastName: "Austen"})
	if err != nil || typ != "AuthorUpdated" {
		t.Fatal(typ, err)
	}

	// A reader that started before both.
	readerReg := newRegistry(t, addrs, topic)
	readers, err := catalogavro.New(readerReg)
	if err != nil {
		t.Fatal(err)
	}
	reader := readers.AuthorEvents
	if got, err := reader.Decode(oldFrame); err != nil || got != (author.AuthorCreated{Code: "jane-austen", FirstName: "Jane", LastName: "Austen"}) {
		t.Errorf("old frame: %#v, %v", got, err)
	}
	if got, err := reader.Decode(frame); err != nil || got != (author.AuthorUpdated{Code: "jane-austen", FirstName: "J.", LastName: "Austen"}) {
		t.Errorf("frame: %#v, %v", got, err)
	}
	unknown := append(avro.AppendFrameHeader(nil, 99), 0)
	if _, err := reader.Decode(unknown); !errors.Is(err, avro.ErrUnknownSchema) {
		t.Errorf("unknown fingerprint: %v", err)
	}
	if n := len(readAll(t, addrs, topic)); n != 4 {
		t.Errorf("%d registry records, want 4", n)
	}
}

// Records written in transactions count whether or not they commit (the
// registry reads uncommitted: a transaction left open must not hide the
// schemas after it, TestOpenTransactionOnTheTopicHidesNoSchema), an
// aborted registration only makes a valid schema known; and the
// transaction markers at the end of the topic do not keep a catch-up from
// reaching it.
func TestTransactionalWriters(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	ctx := ctxT(t)
	r := newRegistry(t, addrs, topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.TransactionalID(topic+"-txn"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	write := func(js string, commit bool) uint64 {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		fp := fingerprint(t, js)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: schemaregistry.Key(fp), Value: []byte(js)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		return fp
	}
	committed := write(schemaA, true)
	aborted := write(schemaB, false)
	if js, err := r.Lookup(ctx, committed); err != nil || js != schemaA {
		t.Errorf("committed: %q, %v", js, err)
	}
	if js, err := r.Lookup(ctx, aborted); err != nil || js != schemaB {
		t.Errorf("aborted: %q, %v", js, err)
	}
	r2 := newRegistry(t, addrs, topic)
	if all, err := r2.All(ctx); err != nil || len(all) != 2 {
		t.Errorf("All = %v, %v", all, err)
	}
}

// logBuffer collects a registry's log lines (JSON), safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// warnings returns the warnings logged so far, each as its attributes.
func (l *logBuffer) warnings(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	d := json.NewDecoder(bytes.NewReader(l.b.Bytes()))
	for d.More() {
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if m["level"] == "WARN" {
			out = append(out, m)
		}
	}
	return out
}

func (l *logBuffer) option() schemaregistry.Option {
	return schemaregistry.WithLogger(slog.New(slog.NewJSONHandler(l, nil)))
}

// A tombstone removes its fingerprint: for a registry that reads it at
// start, and for one that meets it when it catches up. The schema can be
// registered again after it.
func TestTombstoneRemoves(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	ctx := ctxT(t)
	live := newRegistry(t, addrs, topic)
	fpA, err := live.Register(ctx, schemaA)
	if err != nil {
		t.Fatal(err)
	}
	fpB, err := live.Register(ctx, schemaB)
	if err != nil {
		t.Fatal(err)
	}
	produce(t, addrs, topic, schemaregistry.Key(fpA), nil)

	check := func(name string, r *schemaregistry.Registry) {
		t.Helper()
		all, err := r.All(ctx)
		if err != nil || len(all) != 1 || all[fpB] != schemaB {
			t.Errorf("%s: All = %v, %v; want only %x", name, all, err, fpB)
		}
		_, err = r.Lookup(ctx, fpA)
		if !errors.Is(err, avro.ErrUnknownSchema) || !strings.Contains(err.Error(), "deleted") {
			t.Errorf("%s: Lookup of the deleted schema: %v", name, err)
		}
	}
	check("live", live)
	check("started after", newRegistry(t, addrs, topic))

	// Registered again, it is back for everyone.
	if fp, err := live.Register(ctx, schemaA); err != nil || fp != fpA {
		t.Fatalf("Register again = %x, %v", fp, err)
	}
	for _, r := range []*schemaregistry.Registry{live, newRegistry(t, addrs, topic)} {
		if js, err := r.Lookup(ctx, fpA); err != nil || js != schemaA {
			t.Errorf("after registering again: %q, %v", js, err)
		}
	}
}

// Records that are not valid are skipped with a warning that names their
// partition, offset and key and says why; a registry starts with them in
// the topic, reads past them when it catches up, and goes on working.
func TestInvalidRecordsSkipped(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	ctx := ctxT(t)
	var liveLog logBuffer
	live := newRegistry(t, addrs, topic, liveLog.option())
	fpA, err := live.Register(ctx, schemaA)
	if err != nil {
		t.Fatal(err)
	}
	fpB := fingerprint(t, schemaB)
	garbage := []struct {
		key, value []byte
		why        string
	}{
		{schemaregistry.Key(11), []byte("not json {"), "invalid"},
		{schemaregistry.Key(12), []byte{}, "EOF"}, // empty, not a tombstone
		{schemaregistry.Key(13), []byte{0xff, 0xfe, 0x00}, "invalid"},
		{schemaregistry.Key(14), []byte(`{"type":"nope"}`), "nope"},
		{schemaregistry.Key(15), []byte(strings.Repeat("[", 100000)), "nests deeper"},
		{schemaregistry.Key(fpB + 1), []byte(schemaB), "not the key"},
		{[]byte("short"), []byte(schemaB), "key of 5 bytes"},
		{append(schemaregistry.Key(fpB), 0), []byte(schemaB), "key of 9 bytes"},
		{[]byte{}, []byte(schemaB), "key of 0 bytes"}, // empty, not null: Kafka refuses null keys on a compacted topic
		{[]byte("short"), nil, "key of 5 bytes"},      // a tombstone cannot help it
	}
	first := len(readAll(t, addrs, topic))
	for _, g := range garbage {
		produce(t, addrs, topic, g.key, g.value)
	}
	produce(t, addrs, topic, schemaregistry.Key(fpB), []byte(schemaB)) // a valid record after them

	checkLog := func(name string, l *logBuffer) {
		t.Helper()
		warns := l.warnings(t)
		if len(warns) != len(garbage) {
			t.Errorf("%s: %d warnings, want %d: %v", name, len(warns), len(garbage), warns)
			return
		}
		for i, w := range warns {
			g := garbage[i]
			if w["partition"] != 0.0 || w["offset"] != float64(first+i) || w["key"] != hex.EncodeToString(g.key) ||
				!strings.Contains(fmt.Sprint(w["err"]), g.why) || len(fmt.Sprint(w["err"])) > 300 {
				t.Errorf("%s: warning %v, want partition 0, offset %d, key %x and err saying %q (briefly)", name, w, first+i, g.key, g.why)
			}
		}
	}
	check := func(name string, r *schemaregistry.Registry) {
		t.Helper()
		all, err := r.All(ctx)
		if err != nil || all[fpA] != schemaA || all[fpB] != schemaB {
			t.Errorf("%s: All = %v, %v", name, all, err)
		}
		for _, fp := range []uint64{11, 12, 13, 14, 15, fpB + 1} {
			if _, ok := all[fp]; ok {
				t.Errorf("%s: All has the invalid record's key %x", name, fp)
			}
			if _, err := r.Lookup(ctx, fp); !errors.Is(err, avro.ErrUnknownSchema) || !strings.Contains(err.Error(), "invalid record") {
				t.Errorf("%s: Lookup(%x) = %v", name, fp, err)
			}
		}
		// It still registers and catches up.
		js := fmt.Sprintf(`{"type":"record","name":"After%d","fields":[]}`, len(name))
		fp, err := r.Register(ctx, js)
		if err != nil {
			t.Fatalf("%s: Register after the garbage: %v", name, err)
		}
		if got, err := live.Lookup(ctx, fp); err != nil || got != js {
			t.Errorf("%s: live registry's Lookup of a schema registered after the garbage: %q, %v", name, got, err)
		}
	}
	check("live", live)
	checkLog("live", &liveLog)
	var startLog logBuffer
	started := newRegistry(t, addrs, topic, startLog.option())
	checkLog("started after", &startLog)
	check("started after", started)
}

// Delete writes a tombstone for a schema the topic holds, and refuses a
// fingerprint it does not.
func TestDelete(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	ctx := ctxT(t)
	r := newRegistry(t, addrs, topic)
	fpA, err := r.Register(ctx, schemaA)
	if err != nil {
		t.Fatal(err)
	}
	fpB, err := r.Register(ctx, schemaB)
	if err != nil {
		t.Fatal(err)
	}
	other := newRegistry(t, addrs, topic)
	produce(t, addrs, topic, schemaregistry.Key(7), []byte("garbage"))

	if err := other.Delete(ctx, 0x0123456789abcdef); !errors.Is(err, avro.ErrUnknownSchema) || !strings.Contains(err.Error(), "0123456789abcdef") {
		t.Errorf("Delete of an unknown fingerprint: %v", err)
	}
	if err := other.Delete(ctx, fpA); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(ctx, fpA); !errors.Is(err, avro.ErrUnknownSchema) || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("Delete again: %v", err)
	}
	// A key held only by an invalid record can be deleted too.
	if err := other.Delete(ctx, 7); err != nil {
		t.Errorf("Delete of an invalid record's key: %v", err)
	}
	recs := readAll(t, addrs, topic)
	if n := len(recs); n != 5 {
		t.Fatalf("%d records, want 5", n)
	}
	if k := recs[3].Key; recs[3].Value != nil || binary.BigEndian.Uint64(k) != fpA {
		t.Errorf("record 3: key % x value %q, want a tombstone for %x", k, recs[3].Value, fpA)
	}
	for _, reg := range []*schemaregistry.Registry{r, other} {
		if all, err := reg.All(ctx); err != nil || len(all) != 1 || all[fpB] != schemaB {
			t.Errorf("All = %v, %v", all, err)
		}
	}
}

// WithExistingTopic refuses a missing topic, and does not create it.
func TestExistingTopic(t *testing.T) {
	addrs := brokers(t)
	topic := topicName(t, addrs)
	ctx := ctxT(t)
	_, err := schemaregistry.New(ctx, addrs, topic, quiet(), schemaregistry.WithExistingTopic())
	if !errors.Is(err, schemaregistry.ErrNoTopic) || !strings.Contains(err.Error(), topic) {
		t.Fatalf("err = %v, want ErrNoTopic", err)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addrs...))
	defer cl.Close()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if details.Has(topic) {
		t.Errorf("topic %s created", topic)
	}
	newRegistry(t, addrs, topic)
	newRegistry(t, addrs, topic, schemaregistry.WithExistingTopic())
}
