package baseline

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/loadgen"
	"github.com/bookscatalog/catalog/kafkatest"
)

// The bare loop answers the load generator's Kafka mode, writes exactly
// one event and one outcome per command, and a restarted loop goes on from
// the committed offsets rather than processing anything again.
func TestEOSAnswersTheLoadGenerator(t *testing.T) {
	for _, overlap := range []bool{false, true} {
		t.Run(map[bool]string{false: "one transaction", true: "overlapped"}[overlap], func(t *testing.T) {
			testEOSAnswers(t, overlap)
		})
	}
}

func testEOSAnswers(t *testing.T, overlap bool) {
	brokers := kafkatest.Brokers(t)
	service := kafkatest.Service(t)
	if kafkatest.Real() {
		t.Cleanup(func() { deleteTopicsOf(brokers, service) })
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	drive := func(n int64) {
		t.Helper()
		stop := startEOS(ctx, t, EOSConfig{Brokers: brokers, Service: service, Overlap: overlap, Logger: slog.New(slog.DiscardHandler)})
		defer stop()
		rep, err := loadgen.Run(ctx, loadgen.Options{
			Mode: loadgen.ModeKafka, Brokers: brokers, Service: service,
			Clients: 4, Count: n, Timeout: 30 * time.Second, ProgressEvery: -1,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Successes != n || rep.Errors != 0 {
			t.Fatalf("%d of %d commands answered accepted, errors %v", rep.Successes, n, rep.ErrorKinds)
		}
	}
	drive(40)
	drive(20) // a new loop, same transactional id and group

	topics := eskafka.AggregateTopics(service, "authors")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topics.Events, topics.Results),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]map[string]int{topics.Events: {}, topics.Results: {}}
	for total := 0; total < 120; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of 120 records: %v", total, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == eskafka.HeaderMsgID {
					seen[r.Topic][string(h.Value)]++
				}
			}
			total++
		})
	}
	// Anything more, such as a duplicate, would arrive with what was read.
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	defer pcancel()
	extra := cl.PollFetches(pctx).NumRecords()
	for topic, ids := range seen {
		if len(ids) != 60 {
			t.Errorf("%s: %d distinct msgIds, want 60", topic, len(ids))
		}
		for id, n := range ids {
			if n != 1 {
				t.Errorf("%s: msgId %s %d times", topic, id, n)
			}
		}
	}
	if extra != 0 {
		t.Errorf("%d records beyond one event and one outcome per command", extra)
	}
}

// startEOS runs RunEOS until the returned function is called, after it is
// ready.
func startEOS(ctx context.Context, t *testing.T, cfg EOSConfig) (stop func()) {
	t.Helper()
	rctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	cfg.Ready = func() { close(ready) }
	done := make(chan error, 1)
	go func() { done <- RunEOS(rctx, cfg) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunEOS: %v", err)
		}
	}
	select {
	case <-ready:
		return stop
	case err := <-done:
		t.Fatalf("RunEOS ended before it was ready: %v", err)
	case <-ctx.Done():
		stop()
		t.Fatal(ctx.Err())
	}
	return nil
}

// deleteTopicsOf deletes the topics of service from a real cluster.
func deleteTopicsOf(brokers []string, service string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return
	}
	var mine []string
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, service+".") {
			mine = append(mine, name)
		}
	}
	_, _ = adm.DeleteTopics(ctx, mine...)
}
