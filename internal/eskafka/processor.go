package eskafka

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/internal/es"
)

// Processor is the command side of an aggregate: a stage that consumes the
// aggregate's commands and writes, per batch in one transaction, their
// events, the new states (changelog), their outcomes (results) and the
// consumer offsets. It answers queries for the partitions it serves.
type Processor[S, C, E any] struct {
	*Stage
	agg     es.Aggregate[S, C, E]
	codecs  es.Codecs[S, C, E]
	outcome es.Codec[Outcome]
	topics  Topics
	cfg     Config
	log     *slog.Logger
	states  *Table
	dedup   *Table
}

// NewProcessor returns a processor of agg. outcome encodes results records
// (nil: DefaultOutcomeCodec).
func NewProcessor[S, C, E any](agg es.Aggregate[S, C, E], codecs es.Codecs[S, C, E], outcome es.Codec[Outcome], cfg Config) *Processor[S, C, E] {
	cfg.defaults()
	if outcome == nil {
		outcome = DefaultOutcomeCodec()
	}
	t := AggregateTopics(cfg.Service, agg.Name)
	p := &Processor[S, C, E]{
		cfg: cfg, agg: agg, codecs: codecs, outcome: outcome, topics: t,
		log:    cfg.Logger.With("aggregate", agg.Name),
		states: &Table{Prefix: "s/", Topic: t.Changelog, Hashed: true},
		// Dedup keys are msgIds, stored under the partition of the
		// command they belong to.
		dedup: &Table{Prefix: "m/", Topic: t.Dedup},
	}
	p.Stage = NewStage(StageSpec{
		Name:      agg.Name + ".processor",
		Inputs:    []string{t.Commands},
		Tables:    []*Table{p.states, p.dedup},
		Transform: p,
	}, cfg)
	return p
}

// Topics returns the processor's topic names.
func (p *Processor[S, C, E]) Topics() Topics { return p.topics }

// Handle processes one command record (Transform).
func (p *Processor[S, C, E]) Handle(tx *Tx, r *kgo.Record) error {
	key := string(r.Key)
	msgID := header(r, HeaderMsgID)
	if msgID == "" {
		msgID = fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
	}
	idempotent := header(r, HeaderIdempotent) == "1"
	msgHeader := []kgo.RecordHeader{{Key: HeaderMsgID, Value: []byte(msgID)}}
	emit := func(topic string, value []byte, headers []kgo.RecordHeader) {
		tx.Emit(&kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: value, Headers: headers})
	}

	if idempotent {
		prev, ok, err := tx.Get(p.dedup, msgID)
		if err != nil {
			return fmt.Errorf("load outcome of %s: %w", msgID, err)
		}
		if ok {
			// A retry: answer with the first outcome, apply nothing.
			emit(p.topics.Results, prev, msgHeader)
			return nil
		}
	}

	o := p.decide(tx, r, key, msgID)
	if o == nil {
		return errAborted
	}
	code := ""
	if o.Rejection != nil {
		code = o.Rejection.Code
	}
	p.cfg.Observer.Command(p.agg.Name, header(r, HeaderType), o.Status, code)
	b, _, err := p.outcome.Encode(*o)
	if err != nil {
		return fmt.Errorf("encode outcome of %s: %w", msgID, err)
	}
	emit(p.topics.Results, b, msgHeader)
	if idempotent {
		tx.Put(p.dedup, msgID, b)
	}
	return nil
}

var errAborted = errors.New("command processing failed")

// decide runs the command of r and emits its events and state; it returns
// the outcome, or nil after logging a failure that must abort the batch.
func (p *Processor[S, C, E]) decide(tx *Tx, r *kgo.Record, key, msgID string) *Outcome {
	o := &Outcome{MsgID: msgID, Key: key, Status: StatusRejected}
	malformed := func(format string, args ...any) *Outcome {
		p.log.Warn("malformed command", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "msgId", msgID, "problem", fmt.Sprintf(format, args...))
		o.Rejection = &es.Rejection{Code: es.CodeMalformedCommand, Message: fmt.Sprintf(format, args...)}
		return o
	}
	cmd, err := p.codecs.Command.Decode(r.Value)
	if err != nil {
		if p.cfg.Retryable != nil && p.cfg.Retryable(err) {
			p.log.Warn("cannot decode command now; retrying the batch", "offset", r.Offset, "err", err)
			return nil
		}
		return malformed("undecodable command: %v", err)
	}
	if k := p.agg.Key(cmd); k != key {
		return malformed("record key %q does not match the command's %q", key, k)
	}
	var expected *int64
	if h := header(r, HeaderExpectedVersion); h != "" {
		v, err := strconv.ParseInt(h, 10, 64)
		if err != nil {
			return malformed("header %s: %q is not an integer", HeaderExpectedVersion, h)
		}
		expected = &v
	}
	state, err := p.load(tx, key)
	if err != nil {
		p.log.Error("load state", "key", key, "err", err)
		return nil
	}
	before := p.agg.Version(state)
	next, events, rej := p.agg.Handle(state, cmd, expected)
	if rej != nil {
		o.Version, o.Rejection = before, rej
		return o
	}
	o.Status, o.Version = StatusAccepted, p.agg.Version(next)
	for i, e := range events {
		b, typ, err := p.codecs.Event.Encode(e)
		if err != nil {
			p.log.Error("encode event", "type", fmt.Sprintf("%T", e), "err", err)
			return nil
		}
		o.Events = append(o.Events, EncodedEvent{Type: typ, Data: b})
		tx.Emit(&kgo.Record{Topic: p.topics.Events, Partition: r.Partition, Key: r.Key, Value: b, Headers: []kgo.RecordHeader{
			{Key: HeaderMsgID, Value: []byte(msgID)},
			{Key: HeaderType, Value: []byte(typ)},
			{Key: HeaderVersion, Value: formatInt(before + int64(i) + 1)},
		}})
	}
	if p.agg.Exists(next) {
		b, _, err := p.codecs.State.Encode(next)
		if err != nil {
			p.log.Error("encode state", "key", key, "err", err)
			return nil
		}
		o.State = b
		if len(events) > 0 {
			tx.Put(p.states, key, b)
		}
	} else if len(events) > 0 {
		tx.Put(p.states, key, nil) // tombstone
	}
	return o
}

// load returns the current state of key as the transaction sees it, or the
// zero state.
func (p *Processor[S, C, E]) load(tx *Tx, key string) (S, error) {
	var zero S
	b, ok, err := tx.Get(p.states, key)
	if err != nil || !ok {
		return zero, err
	}
	s, err := p.codecs.State.Decode(b)
	if err != nil {
		return zero, fmt.Errorf("decode stored state of %q: %w", key, err)
	}
	return s, nil
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
