package service_test

// Tests of the rule: no record and no request can stop processing or crash
// the process; the one bad thing is refused or quarantined, and everything
// else goes on.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/config"
)

// incompressible returns n characters that compress badly (brokers measure
// batches compressed).
func incompressible(n int) string {
	b := make([]byte, n*3/4+3)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)[:n]
}

// A writer who grows one book past what its changelog topic takes (here
// 150 kB: max.message.bytes is read from the broker, not assumed) gets a
// 422 too_large; every other book write, that book's smaller writes and the
// readiness go on. On main this stopped every book write for good.
func TestOneClientCannotStopBookWrites(t *testing.T) {
	h := newHarness(t)
	books := eskafka.AggregateTopics(h.Service, "books")
	h.limitTopic(books.Changelog, 150000, books.Specs()...)

	inst := h.start()
	fat := inst.createBook(t, map[string]any{"title": "Fat"}, nil)
	other := inst.createBook(t, map[string]any{"title": "Other"}, nil)
	var refused *response
	for i := range 10 {
		r := inst.do(http.MethodPost, "/books/"+fat.ID+"/chapters", map[string]string{"title": "Chapter", "content": incompressible(40_000)}, nil)
		if r.Status == http.StatusCreated {
			continue
		}
		if i < 3 {
			t.Fatalf("chapter %d refused below the limit: %s", i+1, r)
		}
		refused = r
		break
	}
	if refused == nil {
		t.Fatal("a book of 400 kB was accepted into a 150 kB changelog")
	}
	p := refused.expectProblem(t, http.StatusUnprocessableEntity, "")
	if p.Code != "too_large" || !strings.Contains(p.Detail, books.Changelog) {
		t.Fatalf("refusal: %+v", p)
	}
	inst.putBook(t, fat.ID, "", map[string]string{"title": "Fat, renamed"}, nil)
	inst.addChapter(t, other.ID, "Small", "short")
	inst.do(http.MethodPost, "/authors", map[string]string{"code": "after", "firstName": "A", "lastName": "B"}, nil).expect(t, http.StatusCreated, nil)
	inst.get("/readyz").expect(t, http.StatusOK, nil)
}

// A command record whose type header is not valid UTF-8 (it made the
// metrics call panic and the process die, on every restart) is processed
// like any other: the header is not a metric label.
func TestBadTypeHeaderDoesNotCrash(t *testing.T) {
	h := newHarness(t)
	inst := h.start()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	authors := eskafka.AggregateTopics(h.Service, "authors")
	rec := &kgo.Record{Topic: authors.Commands, Key: []byte("x"), Value: []byte("not avro"), Headers: []kgo.RecordHeader{
		{Key: eskafka.HeaderMsgID, Value: []byte("bad-type-1")}, {Key: eskafka.HeaderType, Value: []byte("\xff\xfe\xfd")},
	}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	inst.awaitStatus(t, "/authors/commands/bad-type-1", http.StatusOK)
	inst.do(http.MethodPost, "/authors", map[string]string{"code": "still-up", "firstName": "A", "lastName": "B"}, nil).expect(t, http.StatusCreated, nil)
	inst.get("/metrics").expect(t, http.StatusOK, nil)
}

// A stage whose batch does not commit for longer than STALL_TIMEOUT makes
// /readyz a 503 that names it; it is ready again once commits flow.
func TestReadyzNamesAStalledStage(t *testing.T) {
	release := make(chan struct{})
	var blocking atomic.Bool
	h := newHarness(t, func(h *harness) {
		h.Configure = func(c *config.Config) { c.StallTimeout = 500 * time.Millisecond }
		h.BeforeCommit = func(ctx context.Context) error {
			if blocking.Load() {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return nil
		}
	})
	inst := h.start()
	blocking.Store(true)
	// The write waits in the stalled batch; its answer comes after.
	go func() {
		resp, err := http.Post(inst.URL+"/authors", "application/json", strings.NewReader(`{"code":"stuck","firstName":"A","lastName":"B"}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	poll(t, "/readyz to name the stalled stage", func() error {
		r := inst.get("/readyz")
		if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "authors.processor") {
			return fmt.Errorf("last: %s", r)
		}
		return nil
	})
	blocking.Store(false)
	close(release)
	inst.awaitStatus(t, "/readyz", http.StatusOK)
	inst.get("/authors/stuck").expect(t, http.StatusOK, nil)
}

// limitTopic creates the topics of specs (those a service would create)
// and sets the max.message.bytes of one of them to limit, before any
// instance starts.
func (h *harness) limitTopic(topic string, limit int, specs ...eskafka.TopicSpec) {
	h.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.Brokers...))
	if err != nil {
		h.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := eskafka.EnsureTopics(ctx, cl, h.Partitions, 1, specs...); err != nil {
		h.t.Fatal(err)
	}
	resp, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr(strconv.Itoa(limit))}}, topic)
	if err == nil {
		_, err = resp.On(topic, nil)
	}
	if err != nil {
		h.t.Fatal(err)
	}
}
