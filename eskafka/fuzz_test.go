package eskafka_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
)

// FuzzStageNeverStops feeds the processor streams of commands built from
// the fuzzer's bytes (valid ones, malformed records, keys that do not match,
// commands too large for their topics, commands that panic, idempotent
// retries with the same or another body, bad headers) and checks that
// every record sent gets exactly one outcome and the stage stays healthy.
func FuzzStageNeverStops(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0, 5, 5, 5, 1, 1, 9, 9, 3, 0, 6, 2})
	f.Add([]byte("the quick brown fox jumps over the lazy dog"))
	cfg := newConfig(f)
	cfg.MaxBatch = 20
	cfg.Linger = 20 * time.Millisecond
	ensureTopics(f, cfg)
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	for _, tp := range []string{topics.Changelog, topics.Results, topics.Dedup} {
		setTopicConfigTB(f, cfg.Brokers, tp, "max.message.bytes", "8192")
	}
	e := startTB(f, cfg)
	var round atomic.Int64
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		r := round.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		sent := map[string]int{}
		var recs []*kgo.Record
		for i, op := range ops {
			k := fmt.Sprintf("f%d-%d", r, op%4)
			id := fmt.Sprintf("m%d-%d", r, i)
			rec := &kgo.Record{Topic: topics.Commands, Key: []byte(k)}
			switch op % 10 {
			case 0:
				rec.Value = []byte(fmt.Sprintf(`{"type":"open","id":%q}`, k))
			case 1:
				rec.Value = []byte(fmt.Sprintf(`{"type":"add","id":%q,"n":%d}`, k, op))
			case 2:
				rec.Value = []byte(fmt.Sprintf(`{"type":"shut","id":%q}`, k))
			case 3: // grows the state; over the limit after a few
				rec.Value = []byte(fmt.Sprintf(`{"type":"pad","id":%q,"text":%q}`, k, noise(int(op)*20)))
			case 4:
				rec.Value = []byte(fmt.Sprintf(`{"type":"boom","id":%q}`, k))
			case 5:
				rec.Value = ops[i:]
			case 6:
				rec.Value = []byte(`{"type":"open","id":"someone-else"}`)
			case 7: // idempotent, the same body under one key each round
				id = fmt.Sprintf("idem-%d", r)
				rec.Value = []byte(fmt.Sprintf(`{"type":"add","id":%q,"n":1}`, k))
				rec.Key = []byte(k)
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: eskafka.HeaderIdempotent, Value: []byte("1")})
			case 8: // the same idempotency key, another body
				id = fmt.Sprintf("idem-%d", r)
				rec.Value = []byte(fmt.Sprintf(`{"type":"add","id":%q,"n":%d}`, k, op))
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: eskafka.HeaderIdempotent, Value: []byte("1")})
			case 9:
				rec.Value = []byte(fmt.Sprintf(`{"type":"add","id":%q,"n":1}`, k))
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: eskafka.HeaderExpectedVersion, Value: ops[i:min(i+3, len(ops))]})
			}
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: eskafka.HeaderMsgID, Value: []byte(id)}, kgo.RecordHeader{Key: eskafka.HeaderType, Value: ops[i:min(i+2, len(ops))]})
			sent[id]++
			recs = append(recs, rec)
		}
		if err := e.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for id := range sent {
			if _, err := e.outcomes.Wait(ctx, id, ""); err != nil {
				t.Fatalf("no outcome for %s: %v (health: %v)", id, err, e.proc.Health())
			}
		}
		got := map[string]int{}
		for _, rec := range readAll(t, cfg.Brokers, topics.Results) {
			if id := header(rec, eskafka.HeaderMsgID); sent[id] > 0 {
				got[id]++
			}
		}
		for id, n := range sent {
			if got[id] != n {
				t.Fatalf("%s: %d outcomes for %d records sent", id, got[id], n)
			}
		}
		if err := e.proc.Health(); err != nil {
			t.Fatalf("stage unhealthy: %v", err)
		}
	})
}

// noise is n bytes that compress badly.
func noise(n int) string {
	var b strings.Builder
	seed := sha256.Sum256([]byte(fmt.Sprint(n)))
	for b.Len() < n {
		seed = sha256.Sum256(seed[:])
		b.WriteString(hex.EncodeToString(seed[:]))
	}
	return b.String()[:n]
}
