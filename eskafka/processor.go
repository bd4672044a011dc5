package eskafka

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/es"
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
	history *Table
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
		// command they belong to, and forgotten with the dedup topic's
		// records.
		dedup: &Table{Prefix: "m/", Topic: t.Dedup, Retention: cfg.idempotencyRetention},
		// Each key's events, indexed from the events topic itself.
		history: &Table{Prefix: "h/", Topic: t.Events, Restore: restoreHistory},
	}
	p.Stage = NewStage(StageSpec{
		Name:       agg.Name + ".processor",
		Inputs:     []string{t.Commands},
		Tables:     []*Table{p.states, p.dedup, p.history},
		Transform:  p,
		DeadLetter: t.DeadLetter,
		Outputs:    []string{t.Events, t.Results},
	}, cfg)
	return p
}

// Topics returns the processor's topic names.
func (p *Processor[S, C, E]) Topics() Topics { return p.topics }

// Handle processes one command record (Transform). Everything the command
// writes is encoded and checked against its topic's size limit before any
// of it is produced, so a command is either written whole or refused with
// an outcome that says why.
func (p *Processor[S, C, E]) Handle(tx *Tx, r *kgo.Record) error {
	key := string(r.Key)
	msgID := p.msgID(r)
	var fingerprint [sha256.Size]byte
	if want := PartitionFor(key, p.cfg.Partitions); want != r.Partition {
		// The state table is keyed by the key alone and its changelog
		// partition is the input's: processing a command on another
		// partition would leave the key's state on two changelog
		// partitions, and a restore would keep whichever it read last.
		problem := fmt.Sprintf("the command is on partition %d of %s, but key %q belongs on partition %d (Kafka's default murmur2 partitioner)",
			r.Partition, r.Topic, truncate(key, 64), want)
		p.log.Warn("malformed command", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "msgId", truncate(msgID, 64), "problem", problem)
		o := &Outcome{MsgID: msgID, Key: key, Status: StatusRejected, Rejection: &es.Rejection{Code: es.CodeMalformedCommand, Message: problem}}
		p.cfg.Observer.Command(p.agg.Name, "unknown", o.Status, o.Rejection.Code)
		return p.finish(tx, r, msgID, o, change{}, false, fingerprint)
	}
	idempotent := header(r, HeaderIdempotent) == "1"
	if idempotent {
		var err error
		if fingerprint, err = p.fingerprint(r.Value); err != nil {
			p.log.Warn("cannot decode command now; retrying the batch", "offset", r.Offset, "err", err)
			return fmt.Errorf("fingerprint of command %s: %w", msgID, err)
		}
		prev, ok, err := tx.Get(p.dedup, msgID)
		if err != nil {
			return fmt.Errorf("load outcome of %s: %w", msgID, err)
		}
		if ok {
			first, same := openDedup(prev, fingerprint)
			if same {
				// A retry: answer with the first outcome, apply nothing.
				tx.Emit(p.outcomeRecord(r, msgID, first, fingerprint[:]))
				return nil
			}
			o := &Outcome{MsgID: msgID, Key: key, Status: StatusRejected, Rejection: &es.Rejection{
				Code: es.CodeIdempotencyKeyReused, Message: "this idempotency key was used before for a different command; use a new key for a new command",
			}}
			p.cfg.Observer.Command(p.agg.Name, "unknown", o.Status, o.Rejection.Code)
			return p.finish(tx, r, msgID, o, change{}, false, fingerprint)
		}
		if header(r, HeaderReplayOnly) == "1" {
			// Sent only to learn whether it is the retry of a command
			// applied before; it is not, and is not decided.
			o := &Outcome{MsgID: msgID, Key: key, Status: StatusRejected, Rejection: &es.Rejection{
				Code: es.CodeNotRecorded, Message: "no outcome is recorded under this idempotency key; nothing was applied",
			}}
			p.cfg.Observer.Command(p.agg.Name, "unknown", o.Status, o.Rejection.Code)
			return p.finish(tx, r, msgID, o, change{}, false, fingerprint)
		}
	}
	o, ch, typ, err := p.decide(tx, r, key, msgID)
	if err != nil {
		return err
	}
	code := ""
	if o.Rejection != nil {
		code = o.Rejection.Code
	}
	p.cfg.Observer.Command(p.agg.Name, typ, o.Status, code)
	return p.finish(tx, r, msgID, o, ch, idempotent, fingerprint)
}

// fingerprint is what tells an idempotent command from another under the
// same msgId: the SHA-256 of its value, or of its Identity's when the
// aggregate has one (and the value decodes). The gateway computes the
// same (Sent). A decode error that may pass on retry (Config.Retryable)
// is returned: falling back to the value's SHA-256 then would record a
// fingerprint the gateway never computed, so its sender would wait in
// vain and every retry be refused as a reuse of the key.
func (p *Processor[S, C, E]) fingerprint(value []byte) ([sha256.Size]byte, error) {
	if p.agg.Identity == nil {
		return sha256.Sum256(value), nil
	}
	c, err := p.codecs.Command.Decode(value)
	if err != nil {
		if p.cfg.Retryable != nil && p.cfg.Retryable(err) {
			return [sha256.Size]byte{}, err
		}
		return sha256.Sum256(value), nil
	}
	return fingerprintOf(p.agg, p.codecs.Command, value, c), nil
}

// fingerprintOf is the fingerprint of a command's value, cmd being the
// value decoded: the SHA-256 of its Identity's encoding when the aggregate
// has one, else of the value.
func fingerprintOf[S, C, E any](agg es.Aggregate[S, C, E], codec es.Codec[C], value []byte, cmd C) [sha256.Size]byte {
	if agg.Identity == nil {
		return sha256.Sum256(value)
	}
	b, _, err := codec.Encode(agg.Identity(cmd))
	if err != nil {
		return sha256.Sum256(value)
	}
	return sha256.Sum256(b)
}

// answersOnlyItsSender reports whether o is an outcome that is recorded
// nowhere and answers only the sender of the command it refused, which its
// fingerprint names: an idempotency key reused for another command, or a
// replay-only command with no outcome recorded (SendOptions.ReplayOnly).
// It never stands for the msgId's outcome (Outcomes.Lookup).
func answersOnlyItsSender(o *Outcome) bool {
	return o.Rejection != nil && (o.Rejection.Code == es.CodeIdempotencyKeyReused || o.Rejection.Code == es.CodeNotRecorded)
}

// change is what an accepted command writes besides its outcome.
type change struct {
	events []*kgo.Record
	// state is the new state's changelog record (a nil value is a
	// tombstone); nil when the command changed nothing.
	state *kgo.Record
	// before is the aggregate's version before the command.
	before int64
	// history holds the events' entries of the history index.
	history []*Recorded
}

// finish encodes the outcome, checks that it and the change fit their
// topics, and produces them; what does not fit turns the outcome into a
// too_large rejection that changes nothing.
func (p *Processor[S, C, E]) finish(tx *Tx, r *kgo.Record, msgID string, o *Outcome, ch change, idempotent bool, fingerprint [sha256.Size]byte) error {
	b, _, err := p.outcome.Encode(*o)
	if err != nil {
		return fmt.Errorf("encode outcome of %s: %w", msgID, err)
	}
	var fp []byte
	if idempotent || answersOnlyItsSender(o) {
		fp = fingerprint[:]
	}
	out := p.outcomeRecord(r, msgID, b, fp)
	check := append(slices.Clip(ch.events), out)
	if ch.state != nil {
		check = append(check, ch.state)
	}
	var dedup []byte
	if idempotent {
		dedup = sealDedup(b, fingerprint)
		check = append(check, &kgo.Record{Topic: p.dedup.Topic, Key: []byte(msgID), Value: dedup})
	}
	for _, w := range check {
		if err := tx.Fits(w); err != nil {
			if !o.Accepted() {
				// Even the refusal does not fit (its msgId, which
				// every outcome repeats, is too large): poison, so
				// that the stage dead-letters the command at the
				// next pass instead of retrying it as a failure.
				return &Poisoned{Kind: PoisonTooLarge, Err: err}
			}
			p.log.Warn("refusing a command whose output is too large", "aggregate", p.agg.Name, "key", o.Key, "msgId", msgID, "err", err)
			tooLarge := &Outcome{MsgID: msgID, Key: o.Key, Status: StatusRejected, Version: ch.before,
				Rejection: &es.Rejection{Code: es.CodeTooLarge, Message: tooLargeMessage(p.agg.Name, o.Key, w, err)}}
			p.cfg.Observer.Command(p.agg.Name, "unknown", tooLarge.Status, es.CodeTooLarge)
			return p.finish(tx, r, msgID, tooLarge, change{}, idempotent, fingerprint)
		}
	}
	for _, w := range ch.events {
		tx.Emit(w)
	}
	if n := len(ch.history); n > 0 && !containsNUL(o.Key) {
		for _, rec := range ch.history {
			b, err := json.Marshal(rec)
			if err != nil {
				return fmt.Errorf("encode the history entry of %s: %w", msgID, err)
			}
			tx.PutLocal(p.history, historyEntryKey(o.Key, rec.Position), b)
		}
		tx.PutLocal(p.history, o.Key, formatInt(ch.history[n-1].Position))
	}
	if ch.state != nil {
		tx.Put(p.states, string(ch.state.Key), ch.state.Value)
	}
	tx.Emit(out)
	if idempotent {
		tx.Put(p.dedup, msgID, dedup)
	}
	return nil
}

func tooLargeMessage(aggregate, key string, w *kgo.Record, err error) string {
	var tl *errTooLarge
	if errors.As(err, &tl) {
		return fmt.Sprintf("the command would write %d bytes to %s for %s %q, over the topic's limit of %d bytes", tl.size, tl.topic, aggregate, key, tl.limit)
	}
	return fmt.Sprintf("the command's output for %s %q does not fit topic %s: %v", aggregate, key, w.Topic, err)
}

func (p *Processor[S, C, E]) msgID(r *kgo.Record) string {
	if id := header(r, HeaderMsgID); id != "" {
		return id
	}
	return fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
}

// outcomeRecord is the results record of a command; fingerprint, when set,
// identifies the command an idempotent outcome answers (see Outcomes.Forget).
func (p *Processor[S, C, E]) outcomeRecord(r *kgo.Record, msgID string, b, fingerprint []byte) *kgo.Record {
	rec := &kgo.Record{Topic: p.topics.Results, Partition: r.Partition, Key: r.Key, Value: b, Headers: []kgo.RecordHeader{{Key: HeaderMsgID, Value: []byte(msgID)}}}
	if fingerprint != nil {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderFingerprint, Value: fingerprint})
	}
	return rec
}

// Quarantine answers for a command the stage gave up on (Quarantiner): a
// rejected outcome, so that its caller does not wait in vain.
func (p *Processor[S, C, E]) Quarantine(tx *Tx, r *kgo.Record, reason *Poisoned) {
	msgID := p.msgID(r)
	code := es.CodeInternal
	if reason.Kind == PoisonTooLarge {
		code = es.CodeTooLarge
	}
	o := Outcome{MsgID: msgID, Key: truncate(string(r.Key), 256), Status: StatusRejected, Rejection: &es.Rejection{
		Code:    code,
		Message: truncate(fmt.Sprintf("the command could not be processed (%s) and was moved to the dead-letter topic %s: %v", reason.Kind, p.topics.DeadLetter, reason.Err), 1024),
	}}
	p.cfg.Observer.Command(p.agg.Name, "unknown", o.Status, code)
	b, _, err := p.outcome.Encode(o)
	if err != nil {
		p.log.Error("encode the outcome of a quarantined command", "msgId", msgID, "err", err)
		return
	}
	out := p.outcomeRecord(r, msgID, b, nil)
	if err := tx.Fits(out); err != nil {
		// Nobody can be waiting for an outcome that cannot be written;
		// the dead-letter record keeps the command.
		p.log.Warn("the outcome of a quarantined command does not fit the results topic; none is written", "msgId", truncate(msgID, 64), "err", err)
		return
	}
	tx.Emit(out)
}

// decide runs the command of r and returns its outcome, the records it
// writes (events and the state; not produced yet) and the command's type
// name for metrics (from the decoded command, a closed set, never from a
// header). An error is a failure of the stage that aborts the batch.
func (p *Processor[S, C, E]) decide(tx *Tx, r *kgo.Record, key, msgID string) (o *Outcome, ch change, typ string, err error) {
	o = &Outcome{MsgID: msgID, Key: key, Status: StatusRejected}
	typ = "unknown"
	reject := func(code, format string, args ...any) (*Outcome, change, string, error) {
		o.Status, o.Events, o.State = StatusRejected, nil, nil
		o.Rejection = &es.Rejection{Code: code, Message: fmt.Sprintf(format, args...)}
		return o, change{}, typ, nil
	}
	malformed := func(format string, args ...any) (*Outcome, change, string, error) {
		p.log.Warn("malformed command", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "msgId", msgID, "problem", fmt.Sprintf(format, args...))
		return reject(es.CodeMalformedCommand, format, args...)
	}
	cmd, err := p.codecs.Command.Decode(r.Value)
	if err != nil {
		if p.cfg.Retryable != nil && p.cfg.Retryable(err) {
			p.log.Warn("cannot decode command now; retrying the batch", "offset", r.Offset, "err", err)
			return nil, change{}, typ, fmt.Errorf("decode command %s: %w", msgID, err)
		}
		return malformed("undecodable command: %v", err)
	}
	typ = typeName(cmd)
	if key == "" {
		return malformed("the command's key is empty")
	}
	if k := p.agg.Key(cmd); k != key {
		return malformed("record key %q does not match the command's %q", truncate(key, 64), truncate(k, 64))
	}
	var expected *int64
	if h := header(r, HeaderExpectedVersion); h != "" {
		v, err := strconv.ParseInt(h, 10, 64)
		if err != nil {
			return malformed("header %s: %q is not an integer", HeaderExpectedVersion, truncate(h, 32))
		}
		expected = &v
	}
	b, ok, err := tx.Get(p.states, key)
	if err != nil {
		return nil, change{}, typ, fmt.Errorf("load state of %q: %w", key, err)
	}
	var state S
	if ok {
		if state, err = p.codecs.State.Decode(b); err != nil {
			// One key's state is unreadable: refuse its commands,
			// loudly, and let every other key flow.
			p.log.Error("stored state cannot be decoded; refusing the key's commands", "aggregate", p.agg.Name, "key", key, "err", err)
			p.cfg.Observer.Poisoned(p.Stage.spec.Name, es.CodeCorruptState)
			return reject(es.CodeCorruptState, "the stored state of %s %q cannot be read (%v); its commands are refused until an operator repairs it", p.agg.Name, key, err)
		}
	}
	before := p.agg.Version(state)
	next, events, rej := p.agg.Handle(state, cmd, expected)
	if rej != nil {
		o.Version, o.Rejection = before, rej
		return o, change{}, typ, nil
	}
	o.Status, o.Version, ch.before = StatusAccepted, p.agg.Version(next), before
	position, err := lastPosition(func(k string) ([]byte, bool, error) { return tx.Get(p.history, k) }, key)
	if err != nil {
		return nil, change{}, typ, err
	}
	subject := header(r, HeaderSubject)
	// The timestamp is set here, not by the client at produce time, so
	// that the history index holds what a restore reads back.
	now := time.UnixMilli(time.Now().UnixMilli())
	for i, e := range events {
		eb, etyp, err := p.codecs.Event.Encode(e)
		if err != nil {
			p.log.Error("encode event", "type", fmt.Sprintf("%T", e), "err", err)
			return reject(es.CodeInternal, "event %T cannot be encoded: %v", e, err)
		}
		o.Events = append(o.Events, EncodedEvent{Type: etyp, Data: eb})
		position++
		ev := &kgo.Record{Topic: p.topics.Events, Partition: r.Partition, Key: r.Key, Value: eb, Timestamp: now, Headers: []kgo.RecordHeader{
			{Key: HeaderMsgID, Value: []byte(msgID)},
			{Key: HeaderType, Value: []byte(etyp)},
			{Key: HeaderVersion, Value: formatInt(before + int64(i) + 1)},
			{Key: HeaderPosition, Value: formatInt(position)},
		}}
		if subject != "" {
			ev.Headers = append(ev.Headers, kgo.RecordHeader{Key: HeaderSubject, Value: []byte(subject)})
		}
		ch.events = append(ch.events, ev)
		rec, err := recordedOf(ev, position)
		if err != nil {
			return nil, change{}, typ, err
		}
		ch.history = append(ch.history, rec)
	}
	var stateValue []byte
	if p.agg.Exists(next) {
		if stateValue, _, err = p.codecs.State.Encode(next); err != nil {
			p.log.Error("encode state", "key", key, "err", err)
			return reject(es.CodeInternal, "the new state cannot be encoded: %v", err)
		}
		o.State = stateValue
	}
	if len(events) > 0 {
		ch.state = &kgo.Record{Topic: p.states.Topic, Partition: r.Partition, Key: r.Key, Value: stateValue}
	}
	return o, ch, typ, nil
}

// typeName is the name of a decoded value's type, for metric labels.
func typeName(v any) string {
	if t := reflect.TypeOf(v); t != nil && t.Name() != "" {
		return t.Name()
	}
	return "unknown"
}

// IdempotencyRetention is how long an idempotency key is remembered: the
// retention of the dedup topic, after which the processor's local store
// forgets the key too (Table.Retention).
const IdempotencyRetention = 7 * 24 * time.Hour

// Dedup values carry the fingerprint of the command they answer, so that
// an idempotency key reused for another command is told apart from a retry:
// dedupMagic, the SHA-256 of the command record's value, then the outcome.
// Values written before had no fingerprint and are taken as a match.
const dedupMagic = "\x00dd1"

func sealDedup(outcome []byte, fingerprint [sha256.Size]byte) []byte {
	b := make([]byte, 0, len(dedupMagic)+sha256.Size+len(outcome))
	b = append(b, dedupMagic...)
	b = append(b, fingerprint[:]...)
	return append(b, outcome...)
}

func openDedup(v []byte, fingerprint [sha256.Size]byte) (outcome []byte, same bool) {
	if len(v) < len(dedupMagic)+sha256.Size || string(v[:len(dedupMagic)]) != dedupMagic {
		return v, true
	}
	fp := v[len(dedupMagic) : len(dedupMagic)+sha256.Size]
	return v[len(dedupMagic)+sha256.Size:], string(fp) == string(fingerprint[:])
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
