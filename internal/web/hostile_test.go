package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/kafkatest"
)

// Found by a review of the live feed as a hostile client and producer
// would use it; each test failed before its fix.

// A producer sends one zstd batch of a few KiB (the broker checks
// max.message.bytes on the compressed batch) holding a 16 MiB key of
// control bytes: the feed made it a frame of about 96 MiB (JSON escapes
// each byte into six), built twice and kept among its recent frames.
func TestCompressedHugeRecordIsNotShown(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Service(t) + ".publishers.events"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pr, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerBatchMaxBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if _, err := kadm.NewClient(pr).CreateTopics(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	feed := NewFeed(&KafkaSource{Brokers: brokers, Aggregates: []Aggregate{publishers(topic)}}, FeedConfig{})
	t.Cleanup(feed.Close)
	sub, err := feed.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Unsubscribe(sub)
	for m := range sub.C() {
		if m.Name == "status" && strings.Contains(string(m.Data), `"live":true`) {
			break
		}
	}
	if err := pr.ProduceSync(ctx, &kgo.Record{Key: []byte(strings.Repeat("\x01", 16<<20)), Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sub.C():
		if len(m.sse()) > 4*maxLiveRecord {
			t.Fatalf("one record that passed max.message.bytes became a %d-byte frame", len(m.sse()))
		}
		if !strings.Contains(string(m.Data), "over the live feed's limit") {
			t.Fatalf("the frame does not say why the event is not shown: %.300s", m.Data)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}
}

// STREAM_MAX_SUBSCRIBERS went to Config.MaxStreams only, and the feed kept
// its own default of 1,000 subscriptions: stream 1,001 was refused with a
// message naming no setting although the operator allowed 2,000.
func TestMaxStreamsAboveTheFeedDefault(t *testing.T) {
	feed := NewFeed(newFakeSource(), FeedConfig{})
	t.Cleanup(feed.Close)
	h := Handlers(Config{Feed: feed, MaxStreams: 2000, MaxStreamsPerClient: 4, KeepAlive: time.Hour})["GET "+StreamPath]
	var last *memWriter
	for i := range 1001 {
		last = newMemWriter()
		serveStream(t, h, last, fmt.Sprintf("10.%d.%d.1:1000", i/256, i%256))
		w := last
		waitFor(t, func() bool { return w.status.Load() != 0 }, "the answer")
	}
	if got := last.status.Load(); got != http.StatusOK {
		t.Fatalf("stream 1,001 with MaxStreams 2,000: status %d, want 200", got)
	}
}

// flakySource fails its first runs at once; then a run stays live (ready)
// until told to fail.
type flakySource struct {
	mu     sync.Mutex
	starts int
	fail   chan struct{}
}

func (s *flakySource) Run(ctx context.Context, ready func([]Event), _ func(Event)) error {
	s.mu.Lock()
	s.starts++
	n := s.starts
	s.mu.Unlock()
	if n <= 5 {
		return errors.New("broker blip")
	}
	ready(nil)
	select {
	case <-s.fail:
		return errors.New("another blip, days later")
	case <-ctx.Done():
		return nil
	}
}

// The retry wait doubled at each failure and never came back: after a few
// early failures, every later blip (after hours of a healthy feed) showed
// "reconnecting" for up to 30 s. A run that got going starts the backoff
// again.
func TestFeedBackoffStartsAgainAfterAHealthyRun(t *testing.T) {
	var logs syncBuffer
	src := &flakySource{fail: make(chan struct{})}
	feed := NewFeed(src, FeedConfig{Backoff: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(feed.Close)
	sub, err := feed.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Unsubscribe(sub)
	starts := func() int { src.mu.Lock(); defer src.mu.Unlock(); return src.starts }
	waitFor(t, func() bool { return starts() == 6 }, "the healthy run")
	close(src.fail)
	waitFor(t, func() bool { return strings.Count(logs.String(), "retrying") == 6 }, "the retry after the healthy run")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "in=20ms") {
		t.Fatalf("the retry after a healthy run: %s; want the first backoff, 20ms", last)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// An unknown asset's name is echoed shortened, as the API's errors echo
// input: a 60 KiB path came back whole in the 404.
func TestUnknownAssetEchoIsShort(t *testing.T) {
	var mux http.ServeMux
	for pattern, h := range Handlers(Config{}) {
		mux.Handle(pattern, h)
	}
	r := httptest.NewRequest(http.MethodGet, AssetsPrefix+strings.Repeat("x", 60<<10), nil)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != http.StatusNotFound || w.Body.Len() > 1<<10 {
		t.Fatalf("%d, %d bytes of answer: %.200s", w.Code, w.Body.Len(), w.Body.String())
	}
}

// brokenSource is live until told to fail, then fails as a Kafka client
// does: with an error naming the broker's internal address.
type brokenSource struct{ fail chan struct{} }

const brokerError = "fetch catalog.books.events/0: unable to dial: dial tcp 10.20.30.40:9092: connect: connection refused"

func (s *brokenSource) Run(ctx context.Context, ready func([]Event), emit func(Event)) error {
	ready(nil)
	select {
	case <-s.fail:
		return errors.New(brokerError)
	case <-ctx.Done():
		return nil
	}
}

// The stream is open to anyone who may read (without a token unless
// AUTH_READS), and when the feed's Kafka consumer failed its status told
// every open page the client's error: the brokers' internal addresses, a
// SASL or TLS failure. The operator reads it in the log; the page is told
// only that the feed is reconnecting.
func TestStreamStatusDoesNotShowKafkaErrors(t *testing.T) {
	var logs syncBuffer
	src := &brokenSource{fail: make(chan struct{})}
	feed := NewFeed(src, FeedConfig{Backoff: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(feed.Close)
	sub, err := feed.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Unsubscribe(sub)
	live := false
	for m := range sub.C() {
		if m.Name == "status" && strings.Contains(string(m.Data), `"live":true`) {
			live = true
			break
		}
	}
	if !live {
		t.Fatal("the feed did not go live")
	}
	close(src.fail)
	select {
	case m := <-sub.C():
		if m.Name != "status" || !strings.Contains(string(m.Data), `"live":false`) {
			t.Fatalf("after the source failed: %s %s, want a status not live", m.Name, m.Data)
		}
		if strings.Contains(string(m.Data), "10.20.30.40") || strings.Contains(string(m.Data), "dial") {
			t.Errorf("the status every page gets names the Kafka error: %s", m.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no status after the source failed")
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "10.20.30.40") }, "the error in the log")
}
