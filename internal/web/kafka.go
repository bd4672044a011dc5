package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
)

// Decoder turns a record value of an events topic into the event's JSON
// (as the JSON API shows it) and its type name.
type Decoder func(value []byte) (event json.RawMessage, typeName string, err error)

// EventDecoder decodes with wire (the topic's Avro codec) and re-encodes
// with show (the JSON API's codec of the same events).
func EventDecoder[E any](wire, show es.Codec[E]) Decoder {
	return func(value []byte) (json.RawMessage, string, error) {
		e, err := wire.Decode(value)
		if err != nil {
			return nil, "", err
		}
		b, name, err := show.Encode(e)
		if err != nil {
			return nil, "", err
		}
		return b, name, nil
	}
}

// KafkaSource reads events topics with a read_committed consumer that is
// positioned at their last stable offsets: every event committed after
// that reaches it, and so may one whose transaction was completing at that
// moment (its commit markers not yet written). Before it calls ready it
// reads back the recent past: the newest Recent events committed before
// those offsets, over all partitions by timestamp. Each event is named by
// the aggregate whose topic holds it (Event.Aggregate), which is how the
// page knows where it belongs.
type KafkaSource struct {
	Brokers []string
	// ClientOpts are added to the Kafka client's options.
	ClientOpts []kgo.Opt
	// Aggregates are the aggregates whose events are read: each from its
	// Topic, decoded with its Decode, and named by its Name.
	Aggregates []Aggregate
	// Recent is how many of the last events Run reads back (default 50;
	// negative: none).
	Recent int
	// Logger, when set, hears of the batches skipped unread (see Run).
	Logger *slog.Logger
}

// Run implements Source.
func (k *KafkaSource) Run(ctx context.Context, ready func(recent []Event), emit func(Event)) error {
	byTopic := make(map[string]*Aggregate, len(k.Aggregates))
	topics := make([]string, 0, len(k.Aggregates))
	for i, a := range k.Aggregates {
		if _, ok := byTopic[a.Topic]; ok || a.Topic == "" {
			return fmt.Errorf("aggregate %s: events topic %q empty or read twice", a.Name, a.Topic)
		}
		byTopic[a.Topic] = &k.Aggregates[i]
		topics = append(topics, a.Topic)
	}
	event := func(r *kgo.Record) Event { return recordEvent(r, byTopic[r.Topic]) }
	n := k.Recent
	if n == 0 {
		n = 50
	}
	n = max(n, 0)
	parts, err := k.offsets(ctx, topics)
	if err != nil {
		return err
	}
	// Each partition is read from up to 2n offsets before its end: every
	// transaction ends with a commit marker, which takes an offset too,
	// and holds one event at least, so that is n events when the
	// partition has had them (fewer if transactions were aborted).
	start := map[string]map[int32]kgo.Offset{}
	behind := map[partitionOf]int64{} // the end of each partition still to read back to
	for p, o := range parts {
		from := max(o.start, o.end-2*int64(n))
		if start[p.topic] == nil {
			start[p.topic] = map[int32]kgo.Offset{}
		}
		start[p.topic][p.partition] = kgo.NewOffset().At(from)
		if from < o.end {
			behind[p] = o.end
		}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(k.Brokers...),
		kgo.ConsumePartitions(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The commit markers show how far a partition has been read: an
		// event may be followed by nothing else before the end but its
		// marker.
		kgo.KeepControlRecords(),
	}, k.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("kafka consumer: %w", err)
	}
	defer cl.Close()
	// Read back until every partition has given a record at or past its
	// last offset before the end. (A transaction aborted just before the
	// end whose abort marker came after another transaction began stays
	// invisible until that one ends too: transactions are short.) Records
	// past the end are new, kept to emit after ready.
	var back []Event
	var later []*kgo.Record
	for len(behind) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		skipped, err := k.fetchError(cl, fetches)
		if err != nil {
			return err
		}
		for _, tl := range skipped {
			p := partitionOf{tl.Topic, tl.Partition}
			if end, ok := behind[p]; ok && tl.NextOffset >= end {
				delete(behind, p)
			}
		}
		fetches.EachRecord(func(r *kgo.Record) {
			p := partitionOf{r.Topic, r.Partition}
			end, ok := behind[p]
			switch {
			case !ok || r.Offset >= end:
				if !r.Attrs.IsControl() {
					later = append(later, r)
				}
			case !r.Attrs.IsControl():
				back = append(back, event(r))
			}
			if ok && r.Offset >= end-1 {
				delete(behind, p)
			}
		})
	}
	// The newest n, oldest first. Ties are broken by place, so that
	// events of one partition keep their order.
	slices.SortFunc(back, func(a, b Event) int {
		return cmp.Or(a.Timestamp.Compare(b.Timestamp), cmp.Compare(a.Topic, b.Topic),
			cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	ready(back[max(len(back)-n, 0):])
	for _, r := range later {
		emit(event(r))
	}
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		_, err := k.fetchError(cl, fetches)
		fetches.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				emit(event(r))
			}
		})
		if err != nil {
			return err
		}
	}
}

// fetchError returns the first error of fetches, if any. A batch that
// decompresses past the client's bound (kgo.MaxDecompressBatchBytes; a few
// KiB of zstd can describe gigabytes) is no error: the client would stop
// fetching its partition until moved past it, and every retry of Run would
// meet it again, so cl is moved past it, and it is returned in skipped.
// The feed cannot show it anyway.
func (k *KafkaSource) fetchError(cl *kgo.Client, fetches kgo.Fetches) (skipped []*kgo.ErrDecompressTooLarge, err error) {
	if fetches.IsClientClosed() {
		return nil, errors.New("kafka consumer closed")
	}
	fetches.EachError(func(topic string, p int32, ferr error) {
		if tl, ok := errors.AsType[*kgo.ErrDecompressTooLarge](ferr); ok {
			if k.Logger != nil {
				k.Logger.Warn("live feed: skipping a batch that decompresses past the client's bound",
					"topic", tl.Topic, "partition", tl.Partition, "offset", tl.Offset, "next_offset", tl.NextOffset)
			}
			cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{tl.Topic: {tl.Partition: {Epoch: tl.Epoch, Offset: tl.NextOffset}}})
			skipped = append(skipped, tl)
			return
		}
		if err == nil {
			err = fmt.Errorf("fetch %s/%d: %w", topic, p, ferr)
		}
	})
	return skipped, err
}

// span is where a partition's records are: from its log start offset to
// its last stable offset.
type span struct{ start, end int64 }

// offsets returns the span of every partition of topics.
func (k *KafkaSource) offsets(ctx context.Context, topics []string) (map[partitionOf]span, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, k.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list the last stable offsets of %v: %w", topics, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list the start offsets of %v: %w", topics, err)
	}
	spans := map[partitionOf]span{}
	var lerr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = fmt.Errorf("last stable offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		spans[partitionOf{o.Topic, o.Partition}] = span{start: o.Offset, end: o.Offset}
	})
	starts.Each(func(o kadm.ListedOffset) {
		p := partitionOf{o.Topic, o.Partition}
		s, ok := spans[p]
		if o.Err != nil || !ok {
			// Without its start, a partition is read from its end only.
			return
		}
		s.start = min(o.Offset, s.end)
		spans[p] = s
	})
	if lerr != nil {
		return nil, lerr
	}
	partitions := map[string]int{}
	for p := range spans {
		partitions[p.topic]++
	}
	for _, t := range topics {
		if partitions[t] == 0 {
			return nil, fmt.Errorf("topic %s has no partitions", t)
		}
	}
	return spans, nil
}

// Bounds of what one record puts in the live feed. A broker checks
// max.message.bytes against a batch as compressed, so a record of a few KiB
// on the wire can hold megabytes of key, and JSON escapes a control byte
// into six: the feed would keep such a frame, twice, in its recent events
// and send it to every page. A record past maxLiveRecord is shown without
// its event, saying why; a header past maxLiveHeader is cut short.
const (
	maxLiveRecord = 64 << 10
	maxLiveHeader = 256
)

// recordEvent decodes r, a record of agg's events topic (nil if none).
func recordEvent(r *kgo.Record, agg *Aggregate) Event {
	size := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		size += len(h.Key) + len(h.Value)
	}
	e := Event{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: cut(r.Key, maxLiveHeader), Timestamp: r.Timestamp}
	for _, h := range r.Headers {
		switch h.Key {
		case eskafka.HeaderType:
			e.Type = cut(h.Value, maxLiveHeader)
		case eskafka.HeaderMsgID:
			e.MsgID = cut(h.Value, maxLiveHeader)
		case eskafka.HeaderVersion:
			e.Version, _ = strconv.ParseInt(cut(h.Value, maxLiveHeader), 10, 64)
		case eskafka.HeaderPosition:
			e.Position, _ = strconv.ParseInt(cut(h.Value, maxLiveHeader), 10, 64)
		case eskafka.HeaderSubject:
			e.Subject = cut(h.Value, maxLiveHeader)
		}
	}
	if size > maxLiveRecord {
		e.Error = fmt.Sprintf("a record of %d bytes (key, value and headers), over the live feed's limit of %d bytes: not shown", size, maxLiveRecord)
		return e
	}
	if agg == nil {
		e.Error = "no aggregate's events topic: " + r.Topic
		return e
	}
	e.Aggregate = agg.Name
	if agg.Decode == nil {
		e.Error = "no decoder for topic " + r.Topic
		return e
	}
	b, name, err := agg.Decode(r.Value)
	if err != nil {
		e.Error = cut([]byte(err.Error()), maxLiveHeader)
		return e
	}
	if len(b) > maxLiveRecord {
		e.Error = fmt.Sprintf("an event of %d bytes as JSON, over the live feed's limit of %d bytes: not shown", len(b), maxLiveRecord)
		return e
	}
	e.Event, e.Type = b, cut([]byte(name), maxLiveHeader)
	return e
}

// cut returns b as a string of at most n bytes, marked "…" when cut (at a
// rune boundary, so that the JSON of the event stays valid UTF-8).
func cut(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	i := n
	for i > 0 && !utf8.RuneStart(b[i]) {
		i--
	}
	return string(b[:i]) + "…"
}
