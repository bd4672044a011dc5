package eskafka

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Quarantiner is implemented by a transform that answers for an input record
// the stage gave up on: one whose output the broker refused, whose handling
// panicked, or that kept failing. The stage has already written the record
// to its dead-letter topic in the same transaction; Quarantine adds what the
// transform owes its callers (a processor: a rejected outcome). It must only
// produce small records and must not fail.
type Quarantiner interface {
	Quarantine(tx *Tx, r *kgo.Record, reason *Poisoned)
}

// Kinds of poisoned records, a closed set (they label metrics).
const (
	// PoisonTooLarge: the record's output does not fit its topic's
	// max.message.bytes.
	PoisonTooLarge = "too_large"
	// PoisonRefused: the broker refused the record's output for another
	// reason that retrying cannot fix.
	PoisonRefused = "refused"
	// PoisonPanic: handling the record panicked.
	PoisonPanic = "panic"
	// PoisonFailing: handling the record failed again and again.
	PoisonFailing = "failing"
	// PoisonMisplaced: handling the record touched a key of a hashed
	// table (Table.Hashed) that belongs on another partition than the
	// record's, as a record a foreign producer wrote to the wrong
	// partition does: the key's rows would end up on two changelog
	// partitions.
	PoisonMisplaced = "misplaced"
)

// Poisoned says why the stage gave up on an input record.
type Poisoned struct {
	// Kind is one of the Poison* constants.
	Kind string
	// Err is the failure, for logs and dead-letter headers.
	Err error
	// attempts counts quarantines that failed themselves: the second
	// drops the original value from the dead-letter record, the third
	// skips the record with only a log line, so that nothing can loop.
	attempts int
}

// Error says the kind of the poisoning and its cause.
func (p *Poisoned) Error() string { return p.Kind + ": " + p.Err.Error() }

// Unwrap returns the cause, for errors.Is and errors.As.
func (p *Poisoned) Unwrap() error { return p.Err }

// Dead-letter record headers, beside the original record's headers.
const (
	HeaderDeadLetterReason    = "deadletter.reason"
	HeaderDeadLetterKind      = "deadletter.kind"
	HeaderDeadLetterTopic     = "deadletter.topic"
	HeaderDeadLetterPartition = "deadletter.partition"
	HeaderDeadLetterOffset    = "deadletter.offset"
	HeaderDeadLetterStage     = "deadletter.stage"
)

// maxPoisoned bounds the records a stage remembers as poisoned; an entry is
// dropped once its record is quarantined and committed.
const maxPoisoned = 1024

// maxFailures is how often handling one record may fail before the stage
// gives up on it.
const maxFailures = 3

type recordID struct {
	topic     string
	partition int32
	offset    int64
}

func idOf(r *kgo.Record) recordID { return recordID{r.Topic, r.Partition, r.Offset} }

// recordFault reports whether a produce error is the fault of the record
// produced (its size or content), so that retrying cannot help and the
// input record that caused it must be isolated, rather than of the
// transaction, the connection or the cluster.
func recordFault(err error) (kind string, ok bool) {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return PoisonTooLarge, true
	case errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage),
		errors.Is(err, kerr.InvalidTimestamp), errors.Is(err, kerr.InvalidRecordState):
		return PoisonRefused, true
	}
	return "", false
}

// errTooLarge marks a record the stage refused to produce because it does
// not fit its topic.
type errTooLarge struct {
	topic       string
	size, limit int
}

func (e *errTooLarge) Error() string {
	return fmt.Sprintf("a record of %d bytes for topic %s is over its limit of %d bytes (max.message.bytes)", e.size, e.topic, e.limit)
}

func (e *errTooLarge) Is(target error) bool { return target == kerr.MessageTooLarge }

// recordOverhead is what a record batch holding one record adds to its key,
// value and headers, rounded up: the v2 batch header (61 bytes) and the
// record's own varints and attributes.
const recordOverhead = 128

// recordSize is the size a broker measures a lone record at, at most.
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value) + recordOverhead
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}

// defaultMaxBatchBytes is franz-go's default ProducerBatchMaxBytes, used for
// a topic whose max.message.bytes cannot be read.
const defaultMaxBatchBytes = 1_000_012

// readLimits returns the max.message.bytes of each topic as the broker
// reports it, capped at what one produce request may carry.
func readLimits(ctx context.Context, cfg Config, topics []string) (map[string]int, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.seeds()...)}, cfg.ClientOpts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return MaxMessageBytes(ctx, kadm.NewClient(cl), topics...)
}

// MaxMessageBytes returns the max.message.bytes of each topic, read from the
// brokers, so that producers can keep every record under it; never more
// than MaxBatchBytes, the most a reader of the runtime takes in one batch.
func MaxMessageBytes(ctx context.Context, adm *kadm.Client, topics ...string) (map[string]int, error) {
	configs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	limits := make(map[string]int, len(topics))
	for _, t := range topics {
		rc, err := configs.On(t, nil)
		if err != nil {
			return nil, fmt.Errorf("describe configs of %s: %w", t, err)
		}
		if rc.Err != nil {
			return nil, fmt.Errorf("describe configs of %s: %w", t, rc.Err)
		}
		limit := defaultMaxBatchBytes
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				n, err := strconv.Atoi(*c.Value)
				if err != nil || n < 512 {
					return nil, fmt.Errorf("topic %s: max.message.bytes=%q is not a usable size", t, *c.Value)
				}
				limit = min(n, MaxBatchBytes)
			}
		}
		limits[t] = limit
	}
	return limits, nil
}

// BatchMaxBytes returns a franz-go option that keeps each produced batch
// under its topic's limit (franz-go's default for unknown topics).
func BatchMaxBytes(limits map[string]int) kgo.ProducerOpt {
	return kgo.ProducerBatchMaxBytesFn(func(topic string) int32 {
		if n, ok := limits[topic]; ok {
			return int32(min(n, 1<<30))
		}
		return defaultMaxBatchBytes
	})
}

// handleSafely runs the transform on r, turning a panic into a Poisoned
// error with the stack logged.
func (s *Stage) handleSafely(tx *Tx, r *kgo.Record) (err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic handling a record; it will be dead-lettered", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = &Poisoned{Kind: PoisonPanic, Err: fmt.Errorf("panic: %v", v)}
		}
	}()
	return s.spec.Transform.Handle(tx, r)
}

// quarantine writes r to the dead-letter topic and lets the transform
// answer for it, instead of handling it.
func (s *Stage) quarantine(tx *Tx, r *kgo.Record, p *Poisoned) {
	s.log.Error("quarantining a record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "kind", p.Kind, "err", p.Err, "dead_letter_topic", s.spec.DeadLetter, "attempt", p.attempts+1)
	s.cfg.Observer.Poisoned(s.spec.Name, p.Kind)
	if p.attempts >= 2 {
		// The dead-letter record itself cannot be written: give up
		// on it, loudly, rather than stop the stage.
		return
	}
	if s.spec.DeadLetter != "" {
		value := r.Value
		if p.attempts == 1 {
			value = nil // the original did not fit: keep its coordinates
		}
		headers := append(append([]kgo.RecordHeader(nil), r.Headers...),
			kgo.RecordHeader{Key: HeaderDeadLetterReason, Value: []byte(truncate(p.Err.Error(), 1024))},
			kgo.RecordHeader{Key: HeaderDeadLetterKind, Value: []byte(p.Kind)},
			kgo.RecordHeader{Key: HeaderDeadLetterTopic, Value: []byte(r.Topic)},
			kgo.RecordHeader{Key: HeaderDeadLetterPartition, Value: formatInt(int64(r.Partition))},
			kgo.RecordHeader{Key: HeaderDeadLetterOffset, Value: formatInt(r.Offset)},
			kgo.RecordHeader{Key: HeaderDeadLetterStage, Value: []byte(s.spec.Name)},
		)
		tx.Emit(&kgo.Record{Topic: s.spec.DeadLetter, Partition: r.Partition, Key: r.Key, Value: value, Headers: headers})
	}
	if q, ok := s.spec.Transform.(Quarantiner); ok {
		q.Quarantine(tx, r, p)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// poisoned returns the poison entry of r, if the stage gave up on it.
func (s *Stage) poisoned(r *kgo.Record) *Poisoned {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.poison[idOf(r)]
}

// markPoisoned remembers that r must be quarantined when it comes back
// (the aborted transaction rewinds the session to it). A record already
// marked had its quarantine fail: the next attempt writes less.
func (s *Stage) markPoisoned(r *kgo.Record, p *Poisoned) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := idOf(r)
	if old, ok := s.poison[id]; ok {
		old.attempts++
		return
	}
	if len(s.poison) >= maxPoisoned {
		for k := range s.poison { // any: a forgotten one is found again
			delete(s.poison, k)
			break
		}
	}
	s.poison[id] = p
	delete(s.failures, id)
}

// countFailure counts a failed attempt at r and reports whether the stage
// should give up on it.
func (s *Stage) countFailure(r *kgo.Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := idOf(r)
	if len(s.failures) >= maxPoisoned {
		clear(s.failures)
	}
	s.failures[id]++
	return s.failures[id] >= maxFailures
}
