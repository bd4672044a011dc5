package web

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/kafkatest"
)

// TestFeedPrefillsFromKafka: a feed started on events already committed
// (as after a restart) shows a new page the newest 50 of them over all
// partitions, by time and oldest first, then follows the new ones; on
// kfake, or the real Kafka of KAFKA_BROKERS.
func TestFeedPrefillsFromKafka(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	svc := kafkatest.Service(t)
	authors, books := svc+".authors.events", svc+".books.events"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopics(ctx, 3, 1, nil, authors, books); err != nil {
		t.Fatal(err)
	}
	pr, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(svc+"-tx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
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
	// Event i is committed at base+i seconds; its key says which.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	rec := func(topic string, p int32, i int) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("e%03d", i)), Value: []byte("{}"),
			Timestamp: base.Add(time.Duration(i) * time.Second),
			Headers:   []kgo.RecordHeader{{Key: "type", Value: []byte("Test")}, {Key: "position", Value: []byte(fmt.Sprint(i))}}}
	}
	// Most events on one partition, one per transaction, so that its
	// commit markers take as many offsets as its events; a few on the
	// others, some several to a transaction; the newest are not all on
	// the busy partition; and an aborted transaction, never shown.
	const total = 70
	for i := range total {
		switch {
		case i%10 == 3:
			produce(true, rec(books, 1, i))
		case i == 45:
			produce(true, rec(authors, 2, i), rec(books, 2, i+1), rec(authors, 2, i+2))
		case i == 46 || i == 47:
		case i == total-1:
			produce(true, rec(books, 0, i))
		default:
			produce(true, rec(authors, 0, i))
		}
		if i == 60 {
			aborted := rec(authors, 0, 1000)
			produce(false, aborted)
		}
	}
	// Wait until every transaction's markers are written: the source
	// reads back from the last stable offsets.
	for {
		lso, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, authors, books)
		if err != nil {
			t.Fatal(err)
		}
		hwm, err := kadm.NewClient(adm).ListEndOffsets(ctx, authors, books)
		if err != nil {
			t.Fatal(err)
		}
		stable := true
		hwm.Each(func(o kadm.ListedOffset) {
			if l, ok := lso.Lookup(o.Topic, o.Partition); !ok || l.Offset != o.Offset {
				stable = false
			}
		})
		if stable {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the transactions never became stable")
		}
		time.Sleep(20 * time.Millisecond)
	}

	decode := func([]byte) (json.RawMessage, string, error) { return json.RawMessage(`{"type":"Test"}`), "Test", nil }
	feed := NewFeed(&KafkaSource{Brokers: brokers, Aggregates: []Aggregate{
		{Name: "authors", Topic: authors, Decode: decode}, {Name: "books", Topic: books, Decode: decode}}}, FeedConfig{})
	t.Cleanup(feed.Close)
	// recentKeys reads sub's recent events up to the next message of
	// another kind: the next live event, or the next live status if
	// untilLive.
	recentKeys := func(sub *Subscription, untilLive bool) (keys []string, next Message) {
		t.Helper()
		for {
			select {
			case next = <-sub.C():
			case <-ctx.Done():
				t.Fatalf("nothing after %d recent events", len(keys))
			}
			switch {
			case next.Name == "recent":
				var e Event
				if err := json.Unmarshal(next.Data, &e); err != nil || e.Error != "" || e.Position == 0 {
					t.Errorf("recent event %s (%v)", next.Data, err)
				}
				keys = append(keys, e.Key)
			case next.Name != "status" || untilLive && strings.Contains(string(next.Data), `"live":true`):
				return keys, next
			}
		}
	}
	var want []string
	for i := total - 50; i < total; i++ {
		want = append(want, fmt.Sprintf("e%03d", i))
	}
	first, err := feed.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	if got, next := recentKeys(first, true); !slices.Equal(got, want) || next.Name != "status" {
		t.Errorf("the first page's recent events:\n%v\nwant\n%v\nthen %s %s, want the live status", got, want, next.Name, next.Data)
	}
	// A page opened later gets them from the feed; both follow what is new.
	second, _ := feed.Subscribe()
	produce(true, rec(authors, 1, total))
	for name, sub := range map[string]*Subscription{"the first page": first, "a later page": second} {
		got, next := recentKeys(sub, false)
		wantRecent := want
		if sub == first {
			wantRecent = nil // had them already
		}
		if !slices.Equal(got, wantRecent) {
			t.Errorf("%s's recent events:\n%v\nwant\n%v", name, got, wantRecent)
		}
		if next.Name != "event" || !strings.Contains(string(next.Data), fmt.Sprintf(`"key":"e%03d"`, total)) {
			t.Errorf("%s then got %s %s, want the new event", name, next.Name, next.Data)
		}
	}
}
