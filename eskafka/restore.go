package eskafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/store"
)

// restore brings the store up to date with partitions of topics: for each,
// it reads from the offset the store recorded up to the last stable offset,
// read_committed, and applies what it reads with apply, recording offsets
// atomically with the data. It returns the number of records applied.
//
// It first waits until no transaction is open on those
// partitions (last stable offset = high watermark): only the owner writes a
// changelog partition, so an open transaction there belongs to its previous
// owner, and reading before it ends would miss that owner's last batch if it
// commits. It may have committed already: a transaction's commit is decided
// when the coordinator logs it, and its markers reach each partition after
// that, in milliseconds usually, but tens of seconds after the whole cluster
// restarted. Its outcome may be read, and the write acknowledged, while the
// changelog's marker is still missing: a store restored up to the marker
// would answer without that write. Past cfg.StallTimeout the restore fails
// instead (errRestoreStalled), and the stage's session starts again. While
// it waits it calls waiting, if not nil, at every check.
//
// Then a store that claims more than the topic holds belongs to another
// history (the topic was recreated): its data for the partition is dropped
// and rebuilt from the start. Before the wait, that could also be a store
// ahead of a commit marker not yet written, rebuilt without its last
// write.
func restore(ctx context.Context, cfg Config, topics []string, partitions []int32, apply func(*store.Batch, *kgo.Record), drop func(topic string, partition int32) error, waiting func()) (int64, error) {
	start := time.Now()
	cl, err := cfg.newClient()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("list last stable offsets: %w", err)
	}
	warned := false
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		hwms, err := adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return 0, fmt.Errorf("list end offsets: %w", err)
		}
		var open []string
		for _, topic := range topics {
			for _, part := range partitions {
				lso, _ := ends.Lookup(topic, part)
				hwm, _ := hwms.Lookup(topic, part)
				if lso.Offset < hwm.Offset {
					open = append(open, fmt.Sprintf("%s/%d (stable up to %d of %d)", topic, part, lso.Offset, hwm.Offset))
				}
			}
		}
		if len(open) == 0 {
			if warned {
				cfg.Logger.Info("the transactions open on the changelog ended", "waited", time.Since(start).Round(time.Millisecond))
			}
			break
		}
		if waiting != nil {
			waiting()
		}
		switch waited := time.Since(start); {
		case waited > cfg.StallTimeout:
			return 0, fmt.Errorf("%w: a transaction stayed open for %v on %s", errRestoreStalled, cfg.StallTimeout, strings.Join(open, ", "))
		case waited > 5*time.Second && !warned:
			warned = true
			cfg.Logger.Warn("a transaction stays open on a changelog; its partitions are served once it ends", "open", open)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		if ends, err = adm.ListCommittedOffsets(ctx, topics...); err != nil {
			return 0, fmt.Errorf("list last stable offsets: %w", err)
		}
	}
	// Each topic's id tells its histories apart: a topic deleted and
	// created again, or one of the same name on another cluster, has
	// another (all zeros from a broker without topic ids: not checked).
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("describe topics: %w", err)
	}
	consume := map[string]map[int32]kgo.Offset{}
	targets := map[store.TopicPartition]int64{}
	for _, topic := range topics {
		var id kadm.TopicID
		if d, ok := details[topic]; ok && d.Err == nil {
			id = d.ID
		}
		for _, part := range partitions {
			end, ok := ends.Lookup(topic, part)
			if !ok || end.Err != nil {
				return 0, fmt.Errorf("last stable offset of %s/%d: %v", topic, part, end.Err)
			}
			next, recorded, err := cfg.Store.Offset(topic, part)
			if err != nil {
				return 0, err
			}
			if recorded && id != (kadm.TopicID{}) {
				held, ok, err := cfg.Store.Get(topicIDKey(topic, part))
				if err != nil {
					return 0, err
				}
				if !ok || !bytes.Equal(held, id[:]) {
					// The store read this partition of another topic of
					// the same name (the topic was recreated, or DATA_DIR
					// comes from another cluster), or before it recorded
					// topic ids: its offsets say nothing of this one, and
					// being behind its end does not make its data this
					// topic's. Dropped; the partition is read from its start.
					cfg.Logger.Warn("store holds another topic of this name (topic recreated, or another cluster?); rebuilding the partition",
						"topic", topic, "partition", part, "topic_id", id.String())
					if err := drop(topic, part); err != nil {
						return 0, err
					}
					recorded, next = false, 0
				}
			}
			if !recorded {
				// The store never read this partition: what it holds
				// under the table's keys came from other topics (the
				// same DATA_DIR with another SERVICE, say) and would
				// answer for this one (a state, or a msgId already
				// processed). Dropped; the partition is read from its
				// start.
				if err := drop(topic, part); err != nil {
					return 0, err
				}
				next = 0
				if id != (kadm.TopicID{}) {
					// Recorded after the drop: a crash between them
					// leaves no id, and the next restore drops again.
					b := &store.Batch{}
					b.Put(topicIDKey(topic, part), id[:])
					if err := cfg.Store.Apply(b); err != nil {
						return 0, err
					}
				}
			}
			if next > end.Offset {
				cfg.Logger.Warn("store is ahead of its changelog (topic recreated?); rebuilding the partition", "topic", topic, "partition", part, "store", next, "topic_end", end.Offset)
				if err := drop(topic, part); err != nil {
					return 0, err
				}
				next = 0
			}
			if next < end.Offset {
				if consume[topic] == nil {
					consume[topic] = map[int32]kgo.Offset{}
				}
				consume[topic][part] = kgo.NewOffset().At(next)
				targets[store.TopicPartition{Topic: topic, Partition: part}] = end.Offset
			}
		}
	}
	if len(targets) == 0 {
		return 0, nil
	}
	cl.Close()
	cl, err = cfg.newClient(
		kgo.ConsumePartitions(consume),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Without control records a tail of transaction markers would
		// never arrive, and the end would never be seen as reached.
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return 0, err
	}
	var n int64
	b := &store.Batch{}
	// A fetch that keeps failing in a way the client retries by itself
	// (a leader that answers every fetch with an error, say) returns
	// nothing, forever: past cfg.StallTimeout without a record the
	// restore fails, naming where it stands, and the session that asked
	// for it starts again instead of waiting silently.
	progress := time.Now()
	// held is what b's changes hold; applyErr, a failed write of b.
	held := 0
	var applyErr error
	for len(targets) > 0 {
		pctx, cancel := context.WithDeadline(ctx, progress.Add(cfg.StallTimeout))
		fetches := cl.PollRecords(pctx, 10000)
		cancel()
		if err := ctx.Err(); err != nil {
			return n, err
		}
		// Batches that decompress past the client's bound: the client
		// stops fetching their partitions until moved past them, and
		// every restore would fail at the same batch. Skipped, after
		// the records fetched before them are applied.
		var skipped []*kgo.ErrDecompressTooLarge
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			if tl, ok := errors.AsType[*kgo.ErrDecompressTooLarge](fe.Err); ok {
				skipped = append(skipped, tl)
				continue
			}
			return n, fmt.Errorf("fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			tp := store.TopicPartition{Topic: r.Topic, Partition: r.Partition}
			target, ok := targets[tp]
			if !ok {
				return
			}
			progress = time.Now()
			if !r.Attrs.IsControl() {
				before := len(b.Ops)
				apply(b, r)
				for _, op := range b.Ops[before:] {
					held += len(op.Key) + len(op.Value)
				}
				n++
			}
			b.SetOffset(r.Topic, r.Partition, r.Offset+1)
			if r.Offset+1 >= target {
				delete(targets, tp)
			}
			if held >= maxRestoreBatchBytes && applyErr == nil {
				// A poll can bring tens of MiB: written as they
				// come, not all at the end of it.
				applyErr = cfg.Store.Apply(b)
				b, held = &store.Batch{}, 0
			}
		})
		for _, tl := range skipped {
			tp := store.TopicPartition{Topic: tl.Topic, Partition: tl.Partition}
			target, ok := targets[tp]
			if !ok {
				continue
			}
			cfg.Logger.Error("a changelog batch decompresses past the client's bound (MaxDecompressBatchBytes); restoring without it",
				"topic", tl.Topic, "partition", tl.Partition, "offset", tl.Offset, "next_offset", tl.NextOffset)
			progress = time.Now()
			b.SetOffset(tl.Topic, tl.Partition, tl.NextOffset)
			if tl.NextOffset >= target {
				delete(targets, tp)
			} else {
				cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{tl.Topic: {tl.Partition: {Epoch: tl.Epoch, Offset: tl.NextOffset}}})
			}
		}
		if applyErr != nil {
			return n, applyErr
		}
		if len(targets) > 0 && time.Since(progress) >= cfg.StallTimeout {
			return n, fmt.Errorf("%w: no record for %v; still to read: %s", errRestoreStalled, cfg.StallTimeout, describeTargets(targets))
		}
		if len(b.Ops) >= 4096 || len(targets) == 0 {
			if err := cfg.Store.Apply(b); err != nil {
				return n, err
			}
			b, held = &store.Batch{}, 0
		}
	}
	cfg.Logger.Info("restored partitions", "topics", topics, "partitions", partitions, "records", n, "took", time.Since(start).Round(time.Millisecond))
	return n, nil
}

// maxRestoreBatchBytes bounds the keys and values a restore holds before it
// writes them to the store: 4,096 records of 1 MiB each would be 4 GiB.
const maxRestoreBatchBytes = 16 << 20

// topicIDPrefix keys the id of the topic each changelog partition of a
// store was read from (outside every table's prefix, like expiryPrefix).
const topicIDPrefix = "\x00topic-id/"

// topicIDKey is the store key of the topic id of a changelog partition.
func topicIDKey(topic string, partition int32) string {
	return fmt.Sprintf("%s%s/%d", topicIDPrefix, topic, partition)
}

// errRestoreStalled marks a restore that read nothing for the stall timeout.
var errRestoreStalled = errors.New("restore stalled")

// describeTargets names each partition still to read and the offset it
// must be read up to.
func describeTargets(targets map[store.TopicPartition]int64) string {
	var parts []string
	for tp, target := range targets {
		parts = append(parts, fmt.Sprintf("%s/%d up to %d", tp.Topic, tp.Partition, target))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// PartitionFor returns the partition of key among n partitions, as Kafka's
// default (murmur2) partitioner computes it. It is on every read's path: a
// franz-go partitioner made per call would seed a random source each time
// (a quarter of a read's CPU), so the hash is computed here.
func PartitionFor(key string, n int32) int32 {
	return int32(murmur2(key)&0x7fffffff) % n
}

// murmur2 is Kafka's key hash (Utils.murmur2 in the Java client).
func murmur2(b string) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := uint32(b[3])<<24 | uint32(b[2])<<16 | uint32(b[1])<<8 | uint32(b[0])
		b = b[4:]
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
