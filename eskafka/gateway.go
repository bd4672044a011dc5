package eskafka

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/es"
)

// Outcomes follows a results topic (read_committed, from its start, so
// outcomes of the retention period can be looked up after a restart) and
// hands each outcome to whoever waits for it. It remembers the most recent
// outcomes, up to MaxRecentOutcomes of them and Config.OutcomeCacheBytes of
// memory, whichever comes first: an outcome carries the aggregate's state,
// so a count alone does not bound the memory.
type Outcomes struct {
	topic    string
	codec    es.Codec[Outcome]
	cl       *kgo.Client
	log      *slog.Logger
	maxBytes int64

	mu     sync.Mutex
	recent map[string]*Outcome
	prints map[string]string // msgId -> fingerprint of an idempotent command
	order  []string          // msgIds in arrival order, oldest first, for eviction
	bytes  int64             // the outcomes' estimated memory
	// waiters are the callers waiting for an outcome, by msgId, each
	// with the fingerprint of the command it sent (Sent), if any: two
	// callers may send different commands under one idempotency key.
	waiters map[string][]waiter
	// reused holds the idempotency_key_reused and not_recorded
	// rejections (answersOnlyItsSender), by msgId and the fingerprint of
	// the command they answer: they answer that command's caller only,
	// and never replace the outcome remembered for the msgId (the first
	// command's, which GET /commands/{msgId} shows).
	reused map[string]*Outcome
	// reusedBytes is what reused holds, bounded by a quarter of maxBytes.
	reusedBytes int64
}

// waiter is one caller of Outcomes.Wait.
type waiter struct {
	ch   chan *Outcome
	want string // fingerprint of the command sent; "" for any outcome
}

// MaxRecentOutcomes bounds the number of outcomes an Outcomes keeps in memory.
const MaxRecentOutcomes = 50000

// outcomeBytes estimates the memory one remembered outcome holds.
func outcomeBytes(o *Outcome) int64 {
	// The msgId twice (the map's key and the outcome's), and the
	// fingerprint kept beside it (prints).
	n := 2*len(o.MsgID) + sha256.Size + len(o.Key) + len(o.Status) + len(o.State) + 200
	for _, e := range o.Events {
		n += len(e.Type) + len(e.Data) + 64
	}
	if o.Rejection != nil {
		n += len(o.Rejection.Code) + len(o.Rejection.Field) + len(o.Rejection.Message)
	}
	return int64(n)
}

// NewOutcomes returns a follower of topic; call Run to start it.
func NewOutcomes(cfg Config, topic string, codec es.Codec[Outcome]) (*Outcomes, error) {
	cfg.defaults()
	if codec == nil {
		codec = DefaultOutcomeCodec()
	}
	cl, err := kgo.NewClient(append(append(FailoverOpts(),
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// The fetch wait is FailoverOpts': a broker answers a fetch as
		// soon as a record arrives, so a long wait costs no latency,
		// and a short one costs idle requests (with 100 ms, half the
		// idle service's CPU: docs/performance.md).
	), cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("results client: %w", err)
	}
	return &Outcomes{
		topic: topic, codec: codec, cl: cl, log: cfg.Logger.With("topic", topic), maxBytes: cfg.OutcomeCacheBytes,
		recent: map[string]*Outcome{}, prints: map[string]string{}, waiters: map[string][]waiter{},
		reused: map[string]*Outcome{},
	}, nil
}

// Run follows the topic until ctx is done, then closes the client.
func (o *Outcomes) Run(ctx context.Context) error {
	defer o.cl.Close()
	for {
		fetches := o.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		for _, fe := range fetches.Errors() {
			if tl, ok := errors.AsType[*kgo.ErrDecompressTooLarge](fe.Err); ok {
				// The client stops fetching the partition until it is
				// moved past the batch: every later outcome of the
				// partition would never arrive.
				o.log.Error("a results batch decompresses past the client's bound (MaxDecompressBatchBytes); skipping it",
					"partition", tl.Partition, "offset", tl.Offset, "next_offset", tl.NextOffset)
				o.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{tl.Topic: {tl.Partition: {Epoch: tl.Epoch, Offset: tl.NextOffset}}})
				continue
			}
			o.log.Warn("fetch results", "partition", fe.Partition, "err", fe.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			out, err := o.codec.Decode(r.Value)
			if err != nil {
				o.log.Warn("undecodable outcome", "partition", r.Partition, "offset", r.Offset, "err", err)
				return
			}
			fp := header(r, HeaderFingerprint)
			if fp != "" && len(fp) != sha256.Size {
				// Not the processor's (a SHA-256): taken as none,
				// rather than kept beside the outcome at any size.
				o.log.Warn("outcome with a malformed fingerprint header; ignoring the header", "partition", r.Partition, "offset", r.Offset, "bytes", len(fp))
				fp = ""
			}
			o.deliver(&out, fp)
		})
	}
}

func (o *Outcomes) deliver(out *Outcome, fingerprint string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if fingerprint != "" && answersOnlyItsSender(out) {
		answered := o.answer(out, fingerprint, true)
		if answered && out.Rejection.Code == es.CodeNotRecorded {
			// It answers one replay, and the command may yet be
			// applied when sent again.
			return
		}
		// An idempotency_key_reused refusal is kept for the callers
		// of that command not waiting yet, whether or not one waits
		// now: several may have sent it, and each is refused alike.
		// The processor's rejection carries no state or events:
		// whatever a foreign record put there is not kept.
		kept := &Outcome{MsgID: out.MsgID, Key: out.Key, Status: out.Status, Version: out.Version, Rejection: out.Rejection}
		k := out.MsgID + "\x00" + fingerprint
		size := int64(len(k)) + outcomeBytes(kept)
		o.dropReused(k)
		for len(o.reused) > 0 && (len(o.reused) >= maxReused || o.reusedBytes+size > o.maxBytes/4) {
			for k := range o.reused { // any: its caller then times out
				o.dropReused(k)
				break
			}
		}
		o.reused[k] = kept
		o.reusedBytes += size
		return
	}
	if fingerprint != "" {
		o.prints[out.MsgID] = fingerprint
		// A not_recorded refusal kept for this command is stale now
		// that it has an outcome of its own.
		o.dropReused(out.MsgID + "\x00" + fingerprint)
	} else {
		delete(o.prints, out.MsgID)
	}
	o.answer(out, fingerprint, false)
	if prev, seen := o.recent[out.MsgID]; seen {
		// A retry's outcome: the same msgId again; keep its place.
		o.bytes -= outcomeBytes(prev)
	} else {
		o.order = append(o.order, out.MsgID)
	}
	o.recent[out.MsgID] = out
	o.bytes += outcomeBytes(out)
	for len(o.order) > 1 && (len(o.order) > MaxRecentOutcomes || o.bytes > o.maxBytes) {
		old := o.order[0]
		o.order[0] = ""
		o.order = o.order[1:]
		if prev, ok := o.recent[old]; ok {
			o.bytes -= outcomeBytes(prev)
			delete(o.recent, old)
			delete(o.prints, old)
		}
	}
}

// dropReused forgets the reused rejection under k, if any; callers hold
// o.mu.
func (o *Outcomes) dropReused(k string) {
	if out, ok := o.reused[k]; ok {
		o.reusedBytes -= int64(len(k)) + outcomeBytes(out)
		delete(o.reused, k)
	}
}

// answer hands out, as it arrives, to the waiters it answers, and reports
// whether any was; callers hold o.mu. An idempotency_key_reused or
// not_recorded rejection (reused) answers only the caller of the command
// it refused; any other
// outcome answers a caller that waits for any outcome, and one that sent
// the command it answers. An outcome with no fingerprint (a quarantined
// command's) answers every caller as it arrives, for it can be the answer
// to any of them; from the cache (Wait) it would answer a retry that may
// yet be applied with the first attempt's failure.
func (o *Outcomes) answer(out *Outcome, fingerprint string, reused bool) bool {
	ws := o.waiters[out.MsgID]
	kept := ws[:0]
	answered := false
	for _, w := range ws {
		if w.want == fingerprint || !reused && (w.want == "" || fingerprint == "") {
			w.ch <- out
			answered = true
			continue
		}
		kept = append(kept, w)
	}
	clear(ws[len(kept):])
	if len(kept) == 0 {
		delete(o.waiters, out.MsgID)
	} else {
		o.waiters[out.MsgID] = kept
	}
	return answered
}

// maxReused bounds the idempotency_key_reused and not_recorded rejections
// kept for callers not yet waiting.
const maxReused = 10000

// Size returns how many outcomes are remembered and their estimated bytes.
func (o *Outcomes) Size() (outcomes int, bytes int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.recent), o.bytes
}

// Lookup returns the outcome of msgID if it is known.
func (o *Outcomes) Lookup(msgID string) (*Outcome, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out, ok := o.recent[msgID]
	return out, ok
}

// Wait returns the outcome of msgID once it is committed, or ctx's error.
// With a fingerprint (Sent's: the SHA-256 of the command's value, sent
// idempotent), it waits for the outcome of that command: a remembered
// outcome of another command under the same msgId (an idempotency key
// reused for a different command) does not answer it, the processor's
// answer to this command does. With none, any outcome of msgID answers.
func (o *Outcomes) Wait(ctx context.Context, msgID, fingerprint string) (*Outcome, error) {
	o.mu.Lock()
	if out, ok := o.recent[msgID]; ok {
		if got, printed := o.prints[msgID]; fingerprint == "" || printed && got == fingerprint {
			o.mu.Unlock()
			return out, nil
		}
	}
	if fingerprint != "" {
		// An idempotency_key_reused refusal is kept, not taken:
		// every caller of that command is refused alike, and several
		// may wait for it (one key, one body, sent at once), each with
		// its own command answered already. A not_recorded one
		// answers one replay.
		if out, ok := o.reused[msgID+"\x00"+fingerprint]; ok {
			if out.Rejection.Code == es.CodeNotRecorded {
				o.dropReused(msgID + "\x00" + fingerprint)
			}
			o.mu.Unlock()
			return out, nil
		}
	}
	ch := make(chan *Outcome, 1)
	o.waiters[msgID] = append(o.waiters[msgID], waiter{ch: ch, want: fingerprint})
	o.mu.Unlock()
	select {
	case out := <-ch:
		return out, nil
	case <-ctx.Done():
		o.mu.Lock()
		defer o.mu.Unlock()
		select {
		case out := <-ch: // answered meanwhile
			return out, nil
		default:
		}
		ws := o.waiters[msgID]
		for i, w := range ws {
			if w.ch == ch {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(o.waiters, msgID)
		} else {
			o.waiters[msgID] = ws
		}
		return nil, ctx.Err()
	}
}

// ErrSendUnconfirmed is returned by Gateway.Send when its context ended
// before Kafka confirmed the command: it may or may not be written.
var ErrSendUnconfirmed = errors.New("the command was not confirmed by Kafka in time and may still be written")

// Gateway is the write side of an aggregate for adapters such as HTTP: it
// sends commands to the commands topic and returns their typed outcomes.
type Gateway[S, C, E any] struct {
	agg      es.Aggregate[S, C, E]
	codecs   es.Codecs[S, C, E]
	topics   Topics
	producer *kgo.Client
	outcomes *Outcomes
}

// NewGateway returns a gateway that produces with producer (an idempotent,
// non-transactional client using Kafka's default partitioner) and reads
// outcomes from outcomes.
func NewGateway[S, C, E any](agg es.Aggregate[S, C, E], codecs es.Codecs[S, C, E], service string, producer *kgo.Client, outcomes *Outcomes) *Gateway[S, C, E] {
	return &Gateway[S, C, E]{agg: agg, codecs: codecs, topics: AggregateTopics(service, agg.Name), producer: producer, outcomes: outcomes}
}

// SendOptions qualify a command.
type SendOptions struct {
	// MsgID identifies the command; required.
	MsgID string
	// ExpectedVersion, if set, is checked against the aggregate's.
	ExpectedVersion *int64
	// Idempotent makes the processor remember the outcome by MsgID, so
	// that a command sent again with the same MsgID applies nothing.
	Idempotent bool
	// Subject, when set, names who sent the command (the authenticated
	// caller): it goes on the command as the HeaderSubject header, and
	// the processor copies it onto the command's events.
	Subject string
	// ReplayOnly, with Idempotent, sends the command only to be answered
	// with the outcome recorded under its MsgID, never to be decided: a
	// retry of a command applied before gets the first outcome, another
	// command under the MsgID idempotency_key_reused, and a command with
	// nothing recorded an es.CodeNotRecorded rejection that applies and
	// records nothing. An adapter sends it for an idempotent command its
	// own checks refuse, which may be the retry of one they let through
	// before things changed. The command also expects version -1, which
	// no aggregate has, so that a processor of an older build, which
	// does not know the header, refuses it (version_mismatch, recorded
	// under the MsgID) rather than applying it.
	ReplayOnly bool
}

// Result is a decoded outcome.
type Result[S, E any] struct {
	*Outcome
	// State is the decoded Outcome.State; Exists is false when nil.
	State  S
	Exists bool
	Events []E
}

// Sent is a command Send wrote, to wait for with Await. Sent{MsgID: id}
// waits for whatever outcome id gets.
type Sent struct {
	// MsgID is the command's msgId.
	MsgID string
	// fingerprint tells an idempotent command from another sent under
	// the same msgId (HeaderFingerprint).
	fingerprint string
}

// Send writes cmd to the commands topic and returns once Kafka has it. A
// command whose key (Aggregate.Key) is empty is refused.
func (g *Gateway[S, C, E]) Send(ctx context.Context, cmd C, opt SendOptions) (Sent, error) {
	if opt.MsgID == "" {
		return Sent{}, errors.New("send command: empty msgId")
	}
	key := g.agg.Key(cmd)
	if key == "" {
		// It would be decided as the aggregate of id "", which no
		// command means.
		return Sent{}, fmt.Errorf("send command %T: its key (Aggregate.Key of %s) is empty", cmd, g.agg.Name)
	}
	b, typ, err := g.codecs.Command.Encode(cmd)
	if err != nil {
		return Sent{}, fmt.Errorf("encode command %T: %w", cmd, err)
	}
	sent := Sent{MsgID: opt.MsgID}
	r := &kgo.Record{Topic: g.topics.Commands, Key: []byte(key), Value: b, Headers: []kgo.RecordHeader{
		{Key: HeaderMsgID, Value: []byte(opt.MsgID)},
		{Key: HeaderType, Value: []byte(typ)},
	}}
	if opt.ReplayOnly {
		if !opt.Idempotent {
			return Sent{}, errors.New("send command: ReplayOnly without Idempotent")
		}
		r.Headers = append(r.Headers,
			kgo.RecordHeader{Key: HeaderReplayOnly, Value: []byte("1")},
			kgo.RecordHeader{Key: HeaderExpectedVersion, Value: formatInt(-1)})
	} else if opt.ExpectedVersion != nil {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderExpectedVersion, Value: formatInt(*opt.ExpectedVersion)})
	}
	if opt.Subject != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderSubject, Value: []byte(opt.Subject)})
	}
	if opt.Idempotent {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderIdempotent, Value: []byte("1")})
		fp := fingerprintOf(g.agg, g.codecs.Command, b, cmd)
		sent.fingerprint = string(fp[:])
	}
	// Wait for the produce at most as long as ctx allows: franz-go's
	// idempotent producer does not fail a record already written to a
	// connection until a broker answers, so with every broker down a
	// synchronous produce waits for as long as they are away. The record
	// may still be written after ctx ends: ErrSendUnconfirmed says so, and
	// a retry with the same MsgID (idempotent) is safe.
	// TryProduce: with the producer's buffer full (a long outage), fail
	// at once (kgo.ErrMaxBuffered) rather than block past ctx.
	done := make(chan error, 1)
	g.producer.TryProduce(context.WithoutCancel(ctx), r, func(_ *kgo.Record, err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			return sent, fmt.Errorf("produce command %s: %w", opt.MsgID, err)
		}
	case <-ctx.Done():
		return sent, fmt.Errorf("produce command %s: %w: %w", opt.MsgID, ErrSendUnconfirmed, ctx.Err())
	}
	return sent, nil
}

// Await waits for the outcome of the command sent: for an idempotent one,
// its own, even while another command sent under the same msgId (a reused
// idempotency key) is answered idempotency_key_reused.
func (g *Gateway[S, C, E]) Await(ctx context.Context, sent Sent) (*Result[S, E], error) {
	out, err := g.outcomes.Wait(ctx, sent.MsgID, sent.fingerprint)
	if err != nil {
		return nil, err
	}
	return g.Decode(out)
}

// Lookup returns the decoded outcome of msgID if it is known.
func (g *Gateway[S, C, E]) Lookup(msgID string) (*Result[S, E], bool, error) {
	out, ok := g.outcomes.Lookup(msgID)
	if !ok {
		return nil, false, nil
	}
	res, err := g.Decode(out)
	return res, err == nil, err
}

// Decode decodes the state and events of out.
func (g *Gateway[S, C, E]) Decode(out *Outcome) (*Result[S, E], error) {
	res := &Result[S, E]{Outcome: out}
	if out.State != nil {
		s, err := g.codecs.State.Decode(out.State)
		if err != nil {
			return nil, fmt.Errorf("decode state in outcome %s: %w", out.MsgID, err)
		}
		res.State, res.Exists = s, true
	}
	for _, e := range out.Events {
		ev, err := g.codecs.Event.Decode(e.Data)
		if err != nil {
			return nil, fmt.Errorf("decode %s in outcome %s: %w", e.Type, out.MsgID, err)
		}
		res.Events = append(res.Events, ev)
	}
	return res, nil
}
