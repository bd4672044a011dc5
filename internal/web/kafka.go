package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/internal/es"
	"github.com/bookscatalog/catalog/internal/eskafka"
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

// KafkaSource reads events topics with a read_committed consumer that
// starts at their last stable offsets: every event committed after it is
// positioned reaches it, and so may one whose transaction was completing
// at that moment (its commit markers not yet written), but nothing older.
type KafkaSource struct {
	Brokers []string
	// ClientOpts are added to the Kafka client's options.
	ClientOpts []kgo.Opt
	// Topics maps each events topic to the decoder of its values.
	Topics map[string]Decoder
}

// Run implements Source.
func (k *KafkaSource) Run(ctx context.Context, ready func(), emit func(Event)) error {
	topics := make([]string, 0, len(k.Topics))
	for t := range k.Topics {
		topics = append(topics, t)
	}
	start, err := k.ends(ctx, topics)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(k.Brokers...),
		kgo.ConsumePartitions(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}, k.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("kafka consumer: %w", err)
	}
	defer cl.Close()
	ready()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errors.New("kafka consumer closed")
		}
		var ferr error
		fetches.EachError(func(topic string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) { emit(k.event(r)) })
		if ferr != nil {
			return ferr
		}
	}
}

// ends returns the last stable offset of every partition of topics.
func (k *KafkaSource) ends(ctx context.Context, topics []string) (map[string]map[int32]kgo.Offset, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, k.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	listed, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list the last stable offsets of %v: %w", topics, err)
	}
	start := map[string]map[int32]kgo.Offset{}
	for _, t := range topics {
		start[t] = map[int32]kgo.Offset{}
	}
	var lerr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = fmt.Errorf("last stable offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		start[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	if lerr != nil {
		return nil, lerr
	}
	for _, t := range topics {
		if len(start[t]) == 0 {
			return nil, fmt.Errorf("topic %s has no partitions", t)
		}
	}
	return start, nil
}

// event decodes r.
func (k *KafkaSource) event(r *kgo.Record) Event {
	e := Event{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Timestamp: r.Timestamp}
	for _, h := range r.Headers {
		switch h.Key {
		case eskafka.HeaderType:
			e.Type = string(h.Value)
		case eskafka.HeaderMsgID:
			e.MsgID = string(h.Value)
		case eskafka.HeaderVersion:
			e.Version, _ = strconv.ParseInt(string(h.Value), 10, 64)
		}
	}
	dec := k.Topics[r.Topic]
	if dec == nil {
		e.Error = "no decoder for topic " + r.Topic
		return e
	}
	b, name, err := dec(r.Value)
	if err != nil {
		e.Error = err.Error()
		return e
	}
	e.Event, e.Type = b, name
	return e
}
