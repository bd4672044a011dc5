package eskafka_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/store/memstore"
)

// produceRaw writes records as any client with write access to the topics
// can: to the partition each names, whatever its key hashes to.
func produceRaw(t *testing.T, cfg eskafka.Config, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// An event record on the events topic whose position header is huge (say
// 10,000,000,000) for a key that exists is left out of the history index
// by a restore: it does not follow the key's last position. Before, the
// index took the header as it was and claimed that many events, and a
// past-state read (GET /{name}/{key}?at=…) preallocated one Recorded per
// claimed position: a fatal "out of memory" of the Go runtime, which no
// recover() catches. The read runs in a child process so that such a
// crash fails this test instead of killing the test binary.
func TestEventWithAnAbsurdPositionIsNotIndexed(t *testing.T) {
	if os.Getenv("HOSTILE_HISTORY_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEventWithAnAbsurdPositionIsNotIndexed$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "HOSTILE_HISTORY_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			if i := bytes.Index(out, []byte("fatal error")); i >= 0 {
				out = out[i:min(len(out), i+600)]
			} else if len(out) > 3000 {
				out = out[len(out)-3000:]
			}
			t.Fatalf("the process reading the state of a key as of a time died (%v):\n%s", err, out)
		}
		return
	}
	cfg := newConfig(t)
	e := start(t, cfg)
	e.waitReady()
	if res := e.do(open{"victim"}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open: %+v", res.Outcome)
	}
	e.stop()

	// The hostile event: well formed, only its position is absurd.
	value, typ, err := codecs.Event.Encode(added{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	produceRaw(t, cfg, &kgo.Record{
		Topic: topics.Events, Partition: eskafka.PartitionFor("victim", cfg.Partitions), Key: []byte("victim"), Value: value,
		Headers: []kgo.RecordHeader{
			{Key: eskafka.HeaderMsgID, Value: []byte(ids.New())},
			{Key: eskafka.HeaderType, Value: []byte(typ)},
			{Key: eskafka.HeaderVersion, Value: []byte("2")},
			{Key: eskafka.HeaderPosition, Value: []byte("10000000000")},
		},
	})

	// A cold start (new disk, or the partition moved here) rebuilds the
	// index from the events topic.
	cfg.Store = memstore.New()
	e2 := start(t, cfg)
	e2.waitReady()
	page, err := e2.proc.History("victim", 0, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 1 || len(page.Events) != 1 {
		t.Fatalf("history after restore: total %d, %d events listed; want the one real event", page.Total, len(page.Events))
	}
	// What GET /counters/victim?at=<now> does.
	if _, rec, err := e2.proc.StateAt("victim", 0, time.Now()); err != nil || rec == nil || rec.Position != 1 {
		t.Fatalf("state as of now: last event %+v, err %v; want position 1", rec, err)
	}
}

// A command record produced to a partition other than the one its key
// hashes to (a producer with another partitioner, or a hostile one) is
// rejected as malformed. Before, it was processed on that partition against
// the key's state in the shared store (the state table is Hashed: its store
// key ignores the partition), and its new state written to THAT
// partition's changelog: the key's state then lived in two changelog
// partitions, and a cold restart lost an acknowledged write.
func TestCommandOnAnotherPartitionThanItsKeysIsRejected(t *testing.T) {
	cfg := newConfig(t)
	e := start(t, cfg)
	e.waitReady()
	// A key that hashes to partition 0, so that partition 2 is read after
	// it by a restore of both.
	k := ""
	for i := 0; ; i++ {
		if k = key(i); eskafka.PartitionFor(k, cfg.Partitions) == 0 {
			break
		}
	}
	if res := e.do(open{k}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open: %+v", res.Outcome)
	}
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	value, typ, err := codecs.Command.Encode(add{ID: k, N: 5})
	if err != nil {
		t.Fatal(err)
	}
	msgID := ids.New()
	produceRaw(t, cfg, &kgo.Record{Topic: topics.Commands, Partition: 2, Key: []byte(k), Value: value, Headers: []kgo.RecordHeader{
		{Key: eskafka.HeaderMsgID, Value: []byte(msgID)},
		{Key: eskafka.HeaderType, Value: []byte(typ)},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	misrouted, err := e.gw.Await(ctx, eskafka.Sent{MsgID: msgID})
	if err != nil {
		t.Fatal(err)
	}
	if misrouted.Accepted() || misrouted.Rejection == nil || misrouted.Rejection.Code != es.CodeMalformedCommand ||
		!strings.Contains(misrouted.Rejection.Message, "belongs on partition 0") {
		t.Fatalf("a command on partition 2 whose key belongs on 0: %+v %+v, want a malformed_command rejection naming the partition", misrouted, misrouted.Rejection)
	}
	if res := e.do(add{k, 1}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("add: %+v", res.Outcome)
	}
	before, err := e.proc.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	e.stop()

	var wrong []int64
	for _, r := range readAll(t, cfg.Brokers, topics.Changelog) {
		if string(r.Key) == k && r.Partition != eskafka.PartitionFor(k, cfg.Partitions) {
			wrong = append(wrong, int64(r.Partition))
		}
	}
	cfg.Store = memstore.New()
	e2 := start(t, cfg)
	e2.waitReady()
	after, err := e2.proc.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	if len(wrong) > 0 || after != before {
		t.Fatalf("key %s (partition %d) has changelog records on partitions %v; its state before a cold restart %+v, after %+v",
			k, eskafka.PartitionFor(k, cfg.Partitions), wrong, before, after)
	}
}

// A member that joins a stage's group (no cluster secret configured, so
// members are taken at their word, as the docs allow) subscribed to a topic
// whose name sorts before the stage's inputs (here the stage's own
// changelog) gets none of the inputs. Before, the leader balanced the
// alphabetically first topic of all members' subscriptions, which only the
// rogue subscribed to, and made every input follow that plan: the rogue
// held every partition and no command was processed while it stayed.
func TestMemberSubscribedToAForeignTopicTakesNoPartition(t *testing.T) {
	cfg := newConfig(t)
	cfg.InstanceID = "a"
	e := start(t, cfg)
	waitFor(t, "a to own every partition", func() bool { return e.proc.Ready() && len(e.proc.Partitions()) == partitions })
	topics := e.proc.Topics()
	if !(topics.Changelog < topics.Commands) {
		t.Fatalf("test assumption: %s sorts before %s", topics.Changelog, topics.Commands)
	}
	joinRogue(t, cfg, e.proc.Group(), "rogue", "", nil, topics.Changelog)
	var held map[string][]int32
	waitFor(t, "the group to settle with a and the rogue", func() bool {
		held = groupAssignments(t, cfg, e.proc.Group(), 2)
		return held != nil
	})
	if len(held["rogue"]) > 0 {
		t.Fatalf("the member subscribed to a foreign topic holds partitions %v of the inputs (assignments %v)", held["rogue"], held)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgID := ids.New()
	if _, err := e.gw.Send(ctx, open{"x"}, eskafka.SendOptions{MsgID: msgID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gw.Await(ctx, eskafka.Sent{MsgID: msgID}); err != nil {
		t.Fatalf("a command sent with the rogue in the group got no outcome in 10s (%v): a holds partitions %v, assignments %v",
			err, e.proc.Partitions(), held)
	}
}

// A command whose refusal itself cannot fit the results topic (here its
// msgId header, which every outcome repeats, is larger than the topic's
// max.message.bytes) is poison at once: dead-lettered at the next pass,
// with no session restart. Before, Processor.finish returned a plain error,
// which the stage counted as a failing handler: the session was torn down
// and rebuilt, with backoff, twice before the record was quarantined, every
// partition of the lane stopped meanwhile.
func TestCommandWhoseRefusalCannotFitIsQuarantinedAtOnce(t *testing.T) {
	cfg := newConfig(t)
	logs := &lockedBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	ensureTopics(t, cfg)
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	setTopicConfig(t, cfg.Brokers, topics.Results, "max.message.bytes", "4000")
	e := start(t, cfg)
	e.waitReady()
	if res := e.do(open{"k"}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open: %+v", res.Outcome)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := e.gw.Send(ctx, add{"k", 1}, eskafka.SendOptions{MsgID: strings.Repeat("m", 3000)}); err != nil {
		t.Fatal(err)
	}
	// The next command of the same partition shows when the poison one
	// is out of the way.
	if res := e.do(add{"k", 2}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("add: %+v", res.Outcome)
	}
	took := time.Since(start)
	if n := strings.Count(logs.String(), "transactional session failed"); n > 0 {
		t.Fatalf("one command whose refusal does not fit tore the stage's session down %d times (the next command waited %v)", n, took.Round(time.Millisecond))
	}
}

// A record that a foreign producer wrote to another partition than its key
// hashes to, read by a generic stage whose table is hashed: before, the
// stage kept the key's row under the record's partition, so the key had
// rows on two changelog partitions and a restore kept whichever it read
// last. It is now dead-lettered (kind misplaced), writes nothing, and the
// stage goes on with the next record.
func TestStageRecordOnTheWrongPartitionIsQuarantined(t *testing.T) {
	app := newApp(t, eskafka.AppConfig{})
	cfg := app.StageConfig("copier")
	p := cfg.Service + ".copier."
	table := &eskafka.Table{Prefix: "c/", Topic: p + "changelog", Hashed: true}
	stage := eskafka.NewStage(eskafka.StageSpec{
		Name: "copier", Inputs: []string{p + "in"}, Tables: []*eskafka.Table{table},
		Transform: copyTransform{table: table, output: p + "out"},
		Outputs:   []string{p + "out"}, DeadLetter: p + "deadletter",
	}, cfg)
	app.AddStage(stage)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	runApp(t, app)
	waitFor(t, "the app to be ready", app.Ready)

	n := cfg.Partitions
	wrong := (eskafka.PartitionFor("stray", n) + 1) % n
	produceRaw(t, cfg,
		&kgo.Record{Topic: p + "in", Partition: wrong, Key: []byte("stray"), Value: []byte("v1")},
		&kgo.Record{Topic: p + "in", Partition: wrong, Key: []byte("after"), Value: []byte("v2")},
	)
	// "after" is on the wrong partition too unless it hashes there.
	after := "after"
	if eskafka.PartitionFor(after, n) != wrong {
		after = ""
	}
	good := "good"
	produceRaw(t, cfg, &kgo.Record{Topic: p + "in", Partition: eskafka.PartitionFor(good, n), Key: []byte(good), Value: []byte("v3")})
	waitFor(t, "the stage to copy the record after the stray one", func() bool {
		b, err := stage.Lookup(table, good)
		return err == nil && string(b) == "v3"
	})
	// "good" is on another partition, whose batch may commit before the
	// stray one's quarantine (an abort and a retry first): wait for it
	// too.
	var dead []*kgo.Record
	var stray *kgo.Record
	strays := 0
	waitFor(t, "the stray record to be dead-lettered", func() bool {
		dead = readAll(t, cfg.Brokers, p+"deadletter")
		stray, strays = nil, 0
		for _, d := range dead {
			if string(d.Key) == "stray" {
				stray = d
				strays++
			}
		}
		return stray != nil
	})
	if strays > 1 {
		t.Fatalf("the stray record was dead-lettered %d times", strays)
	}
	if stray == nil || header(stray, eskafka.HeaderDeadLetterKind) != eskafka.PoisonMisplaced ||
		!strings.Contains(header(stray, eskafka.HeaderDeadLetterReason), "belongs on partition") {
		t.Fatalf("the stray record was not dead-lettered as misplaced: %d dead letters", len(dead))
	}
	for _, r := range readAll(t, cfg.Brokers, p+"out") {
		if string(r.Key) == "stray" {
			t.Fatal("the stray record was copied")
		}
	}
	for _, r := range readAll(t, cfg.Brokers, p+"changelog") {
		if string(r.Key) == "stray" {
			t.Fatalf("the stray record's row is on changelog partition %d", r.Partition)
		}
	}
	if after != "" {
		if b, err := stage.Lookup(table, after); err != nil || string(b) != "v2" {
			t.Fatalf("the record after the stray one on its partition: %q %v", b, err)
		}
	}
	if err := app.Readiness(); err != nil {
		t.Fatalf("a stray record must not make the stage unready: %v", err)
	}
}
