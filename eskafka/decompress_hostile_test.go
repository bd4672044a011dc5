package eskafka_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/store/memstore"
)

// A command batch compressed with zstd that decompresses past the client's
// bound (kgo.MaxDecompressBatchBytes: the runtime sets MaxBatchBytes,
// franz-go's default is 1 GiB) takes a few KiB on the wire, well under
// max.message.bytes. franz-go refuses to decompress it
// and stops fetching the partition until the application moves past the
// batch (SetOffsets). Before, the stage only logged the fetch error: every
// later command of the partition waited for ever, while the stage said it
// was ready. Now the batch is skipped, a dead-letter record names it, and
// the partition goes on.
func TestBatchDecompressingPastTheBoundIsSkipped(t *testing.T) {
	// The frame builder makes valid zstd: a small one decompresses to
	// the record it describes.
	small, err := kgo.DefaultDecompressor().Decompress(kafkatest.ZstdRecords([]byte("k"), 300<<10), kgo.CodecZstd)
	if err != nil {
		t.Fatal(err)
	}
	var rec kmsg.Record
	if err := rec.ReadFrom(small); err != nil || string(rec.Key) != "k" || len(rec.Value) != 300<<10 || !bytes.Equal(rec.Value, make([]byte, 300<<10)) {
		t.Fatalf("the frame builder is wrong: %v, key %q, value of %d bytes", err, rec.Key, len(rec.Value))
	}

	cfg := newConfig(t)
	e := start(t, cfg)
	e.waitReady()
	k := key(0)
	if res := e.do(open{ID: k}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open %s: %+v", k, res.Outcome)
	}
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	part := eskafka.PartitionFor(k, cfg.Partitions)
	// 200 MiB: under franz-go's own bound (1 GiB), above the runtime's
	// (MaxBatchBytes), which allocating it at once would not be.
	frame := kafkatest.ZstdRecords([]byte(k), 200<<20)
	t.Logf("a zstd frame of %d bytes holding a record of %d MiB", len(frame), 200)
	kafkatest.ProduceBatch(t, cfg.Brokers, topics.Commands, part, kafkatest.ZstdBatch(frame))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent, err := e.gw.Send(ctx, add{ID: k, N: 1}, eskafka.SendOptions{MsgID: ids.New()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.gw.Await(ctx, sent)
	if err != nil {
		t.Fatalf("the command after the batch on partition %d got no outcome (the partition stopped, ready=%v): %v", part, e.proc.Ready(), err)
	}
	if !res.Accepted() {
		t.Fatalf("add: %+v", res.Outcome)
	}
	// The skip was committed: started again, the processor does not
	// meet the batch again.
	e.stop()
	e = start(t, cfg)
	e.waitReady()
	if res := e.do(add{ID: k, N: 1}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("add after a restart: %+v", res.Outcome)
	}
	all := readAll(t, cfg.Brokers, topics.DeadLetter)
	if len(all) != 1 {
		t.Fatalf("%d dead-letter records, want 1 (the skipped batch, once)", len(all))
	}
	dead := all[0]
	if header(dead, eskafka.HeaderDeadLetterTopic) != topics.Commands || header(dead, eskafka.HeaderDeadLetterPartition) != strconv.Itoa(int(part)) ||
		header(dead, eskafka.HeaderDeadLetterOffset) != "1" || header(dead, eskafka.HeaderDeadLetterKind) != eskafka.PoisonTooLarge {
		t.Fatalf("no dead-letter record names the skipped batch: %+v", dead)
	}
	t.Logf("dead letter: %s", header(dead, eskafka.HeaderDeadLetterReason))
}

// The same batch on a results partition: the outcome follower stopped
// fetching the partition, and every command of its keys waited for its
// outcome in vain (an HTTP write timed out). Now the follower skips it.
func TestOutcomesSkipABatchDecompressingPastTheBound(t *testing.T) {
	cfg := newConfig(t)
	e := start(t, cfg)
	e.waitReady()
	k := key(0)
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	kafkatest.ProduceBatch(t, cfg.Brokers, topics.Results, eskafka.PartitionFor(k, cfg.Partitions), kafkatest.ZstdBatch(kafkatest.ZstdRecords([]byte(k), 200<<20)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sent, err := e.gw.Send(ctx, open{ID: k}, eskafka.SendOptions{MsgID: ids.New()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.gw.Await(ctx, sent); err != nil {
		t.Fatalf("the outcome of a command on the partition never came: %v", err)
	}
}

// The same batch on a changelog partition: a restore of the partition
// failed at it, every time, so the stage never became ready. Now the
// restore skips it, with an error log.
func TestRestoreSkipsABatchDecompressingPastTheBound(t *testing.T) {
	cfg := newConfig(t)
	e := start(t, cfg)
	e.waitReady()
	k := key(0)
	if res := e.do(open{ID: k}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("open %s: %+v", k, res.Outcome)
	}
	e.stop()
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	kafkatest.ProduceBatch(t, cfg.Brokers, topics.Changelog, eskafka.PartitionFor(k, cfg.Partitions), kafkatest.ZstdBatch(kafkatest.ZstdRecords([]byte(k), 200<<20)))
	cfg.Store = memstore.New() // restored from the changelogs
	cfg.StallTimeout = 10 * time.Second
	e = start(t, cfg)
	deadline := time.Now().Add(20 * time.Second)
	for !e.proc.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the processor did not become ready: the restore of the partition stops at the batch")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res := e.do(add{ID: k, N: 2}, eskafka.SendOptions{}); !res.Accepted() || res.State.Total != 2 {
		t.Fatalf("add after the restore: %+v", res.Outcome)
	}
}

// A topic that allows records larger than the readers take in one batch
// (MaxBatchBytes) is taken as allowing MaxBatchBytes: the runtime's own
// batches would otherwise be skipped by its readers as too large.
func TestMaxMessageBytesIsCappedAtTheReadersBound(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Service(t) + ".big"
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	big := strconv.Itoa(100 << 20)
	if _, err := adm.CreateTopic(ctx, 1, kafkatest.ReplicationFactor(t, brokers), map[string]*string{"max.message.bytes": &big}, topic); err != nil {
		t.Fatal(err)
	}
	limits, err := eskafka.MaxMessageBytes(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	if limits[topic] != eskafka.MaxBatchBytes {
		t.Fatalf("limit of a topic allowing 100 MiB: %d, want %d (MaxBatchBytes)", limits[topic], eskafka.MaxBatchBytes)
	}
}
