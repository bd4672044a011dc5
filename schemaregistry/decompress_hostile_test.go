package schemaregistry_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A zstd batch of a few tens of KiB that decompresses past franz-go's
// bound (MaxDecompressBatchBytes, 1 GiB) on the registry topic: the
// registry's consumer stopped fetching the topic at it, and every catch-up
// failed with the fetch error, so a registry could not start, nor find a
// schema registered after the batch.
func TestBatchDecompressingPastTheBoundIsSkipped(t *testing.T) {
	addrs, ctx := brokers(t), ctxT(t)
	topic := topicName(t, addrs)
	w := newRegistry(t, addrs, topic)
	// Past 2 GiB: not even the in-process broker's compaction inflates it.
	produceBomb(ctx, t, addrs, topic, []byte("bomb"), 2200<<20)
	fp, err := w.Register(ctx, schemaA)
	if err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, addrs, topic)
	if js, err := r.Lookup(ctx, fp); err != nil || js != schemaA {
		t.Fatalf("a schema registered after the batch: %q, %v", js, err)
	}
}

func produceBomb(ctx context.Context, t *testing.T, addrs []string, topic string, key []byte, n int64) {
	t.Helper()
	body := []byte{0}
	body = binary.AppendVarint(body, 0)
	body = binary.AppendVarint(body, 0)
	body = binary.AppendVarint(body, int64(len(key)))
	body = append(body, key...)
	body = binary.AppendVarint(body, n)
	zeros := n + 1
	prefix := append(binary.AppendVarint(nil, int64(len(body))+zeros), body...)
	f := []byte{0x28, 0xB5, 0x2F, 0xFD, 0xC0, 10 << 3}
	f = binary.LittleEndian.AppendUint64(f, uint64(int64(len(prefix))+zeros))
	block := func(last bool, typ, size int) {
		h := uint32(size)<<3 | uint32(typ)<<1
		if last {
			h |= 1
		}
		f = append(f, byte(h), byte(h>>8), byte(h>>16))
	}
	block(false, 0, len(prefix))
	f = append(f, prefix...)
	for zeros > 0 {
		size := min(zeros, 128<<10)
		zeros -= size
		block(zeros == 0, 1, int(size))
		f = append(f, 0)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(kgo.CodecZstd), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: f}
	raw := b.AppendTo(nil)
	b.Length = int32(len(raw) - 12)
	raw = b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))

	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, mresp.Topics[0].TopicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(mresp.Topics[0].Partitions[0].Leader)))
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce the batch: error code %d", code)
	}
}
