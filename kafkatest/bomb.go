package kafkatest

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ZstdRecords returns a valid zstd frame holding one Kafka record (v2
// record format) with the given key and a value of n zero bytes: the
// record's header in a raw block, then the zeros in RLE blocks of 128 KiB,
// four bytes each. A frame of a few tens of KiB so holds a gigabyte: what
// a hostile writer sends to make a reader decompress more than it can
// hold.
func ZstdRecords(key []byte, n int64) []byte {
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

// ZstdBatch returns a zstd record batch of one record whose compressed
// records are frame (ZstdRecords).
func ZstdBatch(frame []byte) []byte {
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

// ProduceBatch writes a raw record batch to a partition of topic, as any
// client with write access can: a client library would not send what
// ZstdBatch makes.
func ProduceBatch(t testing.TB, brokers []string, topic string, partition int32, batch []byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A topic just created may have no leader yet.
	var mresp *kmsg.MetadataResponse
	leader := int32(-1)
	for leader < 0 {
		meta := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		meta.Topics = append(meta.Topics, mt)
		var err error
		if mresp, err = meta.RequestWith(ctx, cl); err != nil {
			t.Fatal(err)
		}
		if len(mresp.Topics) != 1 {
			t.Fatalf("metadata of %s: %d topics", topic, len(mresp.Topics))
		}
		for _, p := range mresp.Topics[0].Partitions {
			if p.Partition == partition && p.ErrorCode == 0 {
				leader = p.Leader
			}
		}
		if leader < 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("no leader of %s/%d", topic, partition)
			case <-time.After(50 * time.Millisecond):
			}
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
		t.Fatalf("produce the batch to %s/%d: error code %d", topic, partition, code)
	}
}
