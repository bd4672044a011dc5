package web

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/codec/jsoncodec"
	"github.com/bookscatalog/catalog/kafkatest"
)

// The publishers are an aggregate that exists only in these tests: the
// page and its live events know nothing of any aggregate but what is
// registered.
type (
	publisherEvent   any
	PublisherCreated struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	PublisherRenamed struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
)

func publisherCodec() *jsoncodec.Union[publisherEvent] {
	return jsoncodec.NewUnion[publisherEvent](PublisherCreated{}, PublisherRenamed{})
}

// publishers describes the publishers to the page.
func publishers(topic string) Aggregate {
	codec := publisherCodec()
	return Aggregate{Name: "publishers", Singular: "publisher", Key: "id", Label: []string{"{name}"},
		Fields: []Field{{Name: "id", Label: "Id", Create: true}, {Name: "name", Label: "Name", Create: true, Update: true}},
		Forms:  Forms{Create: true, Update: true, Delete: true},
		Events: []EventLabel{{Type: "PublisherCreated", Describe: []string{"Founded as {name}"}, Summary: []string{"{name}"}}},
		Topic:  topic, Decode: EventDecoder[publisherEvent](codec, codec)}
}

// TestKafkaSource reads from the end, committed events only, with their
// headers, on kfake or the real Kafka of KAFKA_BROKERS; each event is
// named by the aggregate whose topic holds it.
func TestKafkaSource(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	svc := kafkatest.Service(t)
	pubs, others := svc+".publishers.events", svc+".others.events"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopics(ctx, 3, 1, nil, pubs, others); err != nil {
		t.Fatal(err)
	}
	pr, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(svc+"-tx"), kgo.DefaultProduceTopic(pubs),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	produce := func(commit bool, recs ...*kgo.Record) {
		t.Helper()
		if err := pr.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := pr.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := pr.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	codec := publisherCodec()
	rec := func(topic, key string, e publisherEvent, version string) *kgo.Record {
		b, typ, err := codec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: topic, Key: []byte(key), Value: b, Headers: []kgo.RecordHeader{
			{Key: "msgId", Value: []byte("m-" + key + "-" + version)}, {Key: "type", Value: []byte(typ)}, {Key: "version", Value: []byte(version)},
		}}
	}
	produce(true, rec(pubs, "before", PublisherCreated{ID: "before", Name: "Not Shown"}, "1"))
	// The source starts at the last stable offsets: an event whose
	// transaction markers are still being written when it starts may be
	// shown too. Wait until they are, so "before" is truly old.
	for {
		lso, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, pubs)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		lso.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		if sum >= 2 { // the record and its commit marker
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the first transaction never became stable")
		}
		time.Sleep(20 * time.Millisecond)
	}

	src := &KafkaSource{Brokers: brokers, Aggregates: []Aggregate{
		publishers(pubs),
		{Name: "others", Singular: "other", Key: "id", Topic: others,
			Decode: func([]byte) (json.RawMessage, string, error) { return nil, "", errors.New("cannot decode") }},
	}}
	ready := make(chan struct{})
	events := make(chan Event, 100)
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- src.Run(rctx, func([]Event) { close(ready) }, func(e Event) { events <- e })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-ctx.Done():
		t.Fatal("the source never became ready")
	}

	produce(false, rec(pubs, "aborted", PublisherCreated{ID: "aborted", Name: "Not Shown"}, "1"))
	produce(true,
		rec(pubs, "jane", PublisherCreated{ID: "jane", Name: "Jane's"}, "1"),
		rec(pubs, "jane", PublisherRenamed{ID: "jane", Name: "Jane's Books"}, "2"),
		&kgo.Record{Topic: others, Key: []byte("b1"), Value: []byte("garbage")})

	var got []Event
	for len(got) < 3 {
		select {
		case e := <-events:
			got = append(got, e)
		case <-ctx.Done():
			t.Fatalf("got %d events, want 3: %+v", len(got), got)
		}
	}
	// The garbage record is on another topic; order holds per key only.
	var jane []Event
	for _, e := range got {
		switch {
		case e.Key == "jane":
			jane = append(jane, e)
		case e.Topic == others:
			if e.Error == "" || e.Event != nil || e.Aggregate != "others" {
				t.Errorf("undecodable record: %+v, want an error and no event", e)
			}
		default:
			t.Errorf("unexpected event %+v", e)
		}
	}
	if len(jane) != 2 {
		t.Fatalf("jane's events: %+v", jane)
	}
	if e := jane[0]; e.Topic != pubs || e.Aggregate != "publishers" || e.Type != "PublisherCreated" || e.Version != 1 || e.MsgID != "m-jane-1" ||
		string(e.Event) != `{"type":"PublisherCreated","id":"jane","name":"Jane's"}` {
		t.Errorf("first event = %+v (%s)", e, e.Event)
	}
	if e := jane[1]; e.Aggregate != "publishers" || e.Type != "PublisherRenamed" || e.Version != 2 || e.Offset <= jane[0].Offset {
		t.Errorf("second event = %+v", e)
	}
	select {
	case e := <-events:
		t.Errorf("unexpected event %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
	rcancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v, want nil", err)
	}
}

func TestKafkaSourceUnknownTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := &KafkaSource{Brokers: brokers, Aggregates: []Aggregate{{Name: "missing", Topic: kafkatest.Service(t) + ".missing"}}}
	if err := src.Run(ctx, func([]Event) { t.Error("ready without a topic") }, func(Event) {}); err == nil {
		t.Error("Run on a missing topic succeeded")
	}
}

// A batch that decompresses past the client's bound, before the source
// starts (in the recent past it reads back) and after: the client stopped
// fetching the partition at it, Run returned the fetch error, and every
// retry met the same batch, so the live feed was gone for good. Now the
// batch is skipped and the events after it are shown.
func TestKafkaSourceSkipsABatchPastTheBound(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	pubs := kafkatest.Service(t) + ".publishers.events"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopics(ctx, 1, 1, nil, pubs); err != nil {
		t.Fatal(err)
	}
	// 4 MiB of zeros in a few hundred bytes, over a bound of 1 MiB (the
	// service's is eskafka.MaxBatchBytes).
	bomb := kafkatest.ZstdBatch(kafkatest.ZstdRecords([]byte("bomb"), 4<<20))
	kafkatest.ProduceBatch(t, brokers, pubs, 0, bomb)

	codec := publisherCodec()
	produce := func(id string) {
		t.Helper()
		b, typ, err := codec.Encode(PublisherCreated{ID: id, Name: id})
		if err != nil {
			t.Fatal(err)
		}
		if err := adm.ProduceSync(ctx, &kgo.Record{Topic: pubs, Key: []byte(id), Value: b,
			Headers: []kgo.RecordHeader{{Key: "type", Value: []byte(typ)}, {Key: "version", Value: []byte("1")}}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	src := &KafkaSource{Brokers: brokers, Aggregates: []Aggregate{publishers(pubs)},
		ClientOpts: []kgo.Opt{kgo.MaxDecompressBatchBytes(1 << 20)}}
	ready := make(chan []Event, 1)
	events := make(chan Event, 100)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	done := make(chan error, 1)
	go func() {
		done <- src.Run(rctx, func(recent []Event) { ready <- recent }, func(e Event) { events <- e })
	}()
	select {
	case recent := <-ready:
		if len(recent) != 0 {
			t.Errorf("recent events %+v, want none (the batch is not shown)", recent)
		}
	case err := <-done:
		t.Fatalf("Run with the batch in its recent past: %v", err)
	case <-ctx.Done():
		t.Fatal("the source never became ready")
	}
	produce("after")
	kafkatest.ProduceBatch(t, brokers, pubs, 0, bomb)
	produce("after-the-second")
	for _, want := range []string{"after", "after-the-second"} {
		select {
		case e := <-events:
			if e.Key != want {
				t.Fatalf("event %+v, want %s's", e, want)
			}
		case err := <-done:
			t.Fatalf("Run met the batch: %v", err)
		case <-ctx.Done():
			t.Fatalf("no event %s", want)
		}
	}
}
