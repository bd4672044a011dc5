package eskafka_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/store/memstore"
)

// zstdRecordSet returns a valid zstd frame holding one Kafka record (v2
// record format) with the given key and a value of n zero bytes: the
// record's header in a raw block, then the zeros in RLE blocks of 128 KiB,
// four bytes each. A frame of a few tens of KiB so holds a gigabyte.
func zstdRecordSet(key []byte, n int64) []byte {
	body := []byte{0}                   // attributes
	body = binary.AppendVarint(body, 0) // timestamp delta
	body = binary.AppendVarint(body, 0) // offset delta
	body = binary.AppendVarint(body, int64(len(key)))
	body = append(body, key...)
	body = binary.AppendVarint(body, n)
	// The value's n zeros, then the header count (0) as one more zero.
	zeros := n + 1
	prefix := binary.AppendVarint(nil, int64(len(body))+zeros)
	prefix = append(prefix, body...)

	f := []byte{0x28, 0xB5, 0x2F, 0xFD} // magic
	f = append(f, 0xC0)                 // 8-byte content size, not single segment, no checksum, no dictionary
	f = append(f, 10<<3)                // window 1 MiB
	f = binary.LittleEndian.AppendUint64(f, uint64(int64(len(prefix))+zeros))
	block := func(last bool, typ, size int) {
		h := uint32(size)<<3 | uint32(typ)<<1
		if last {
			h |= 1
		}
		f = append(f, byte(h), byte(h>>8), byte(h>>16))
	}
	block(false, 0, len(prefix)) // raw
	f = append(f, prefix...)
	for zeros > 0 {
		size := min(zeros, 128<<10)
		zeros -= size
		block(zeros == 0, 1, int(size)) // RLE
		f = append(f, 0)
	}
	return f
}

// zstdBatch returns a record batch of one record, its records the frame.
func zstdBatch(frame []byte) []byte {
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(kgo.CodecZstd),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: 1, Records: frame,
	}
	raw := b.AppendTo(nil)
	b.Length = int32(len(raw) - 12)
	raw = b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// produceBatch writes a raw record batch to topic's partition, as any
// client with write access can.
func produceBatch(t *testing.T, cfg eskafka.Config, topic string, partition int32, batch []byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	leader := int32(-1)
	for _, p := range mresp.Topics[0].Partitions {
		if p.Partition == partition {
			leader = p.Leader
		}
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, mresp.Topics[0].TopicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce the batch: error code %d", code)
	}
}

// A command batch compressed with zstd that decompresses past franz-go's
// bound (MaxDecompressBatchBytes, 1 GiB by default) takes 37 KiB on the
// wire, well under max.message.bytes. franz-go refuses to decompress it
// and stops fetching the partition until the application moves past the
// batch (SetOffsets). Before, the stage only logged the fetch error: every
// later command of the partition waited for ever, while the stage said it
// was ready. Now the batch is skipped, a dead-letter record names it, and
// the partition goes on.
func TestBatchDecompressingPastTheBoundIsSkipped(t *testing.T) {
	// The frame builder makes valid zstd: a small one decompresses to
	// the record it describes.
	small, err := kgo.DefaultDecompressor().Decompress(zstdRecordSet([]byte("k"), 300<<10), kgo.CodecZstd)
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
	frame := zstdRecordSet([]byte(k), 1100<<20)
	t.Logf("a zstd frame of %d bytes holding a record of %d MiB", len(frame), 1100)
	produceBatch(t, cfg, topics.Commands, part, zstdBatch(frame))

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
	produceBatch(t, cfg, topics.Results, eskafka.PartitionFor(k, cfg.Partitions), zstdBatch(zstdRecordSet([]byte(k), 1100<<20)))
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
	produceBatch(t, cfg, topics.Changelog, eskafka.PartitionFor(k, cfg.Partitions), zstdBatch(zstdRecordSet([]byte(k), 1100<<20)))
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
