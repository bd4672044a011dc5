package eskafka_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
)

var errFlaky = errors.New("registry not reachable just now")

// flakyCommands fails its first Decode with a retryable error, as the Avro
// codec does when the registry does not answer in time once.
type flakyCommands struct {
	es.Codec[cmd]
	failed atomic.Bool
}

func (c *flakyCommands) Decode(b []byte) (cmd, error) {
	if c.failed.CompareAndSwap(false, true) {
		return nil, errFlaky
	}
	return c.Codec.Decode(b)
}

// An idempotent command whose fingerprint the processor could not decode
// at once (a retryable error that passes the next time) must still be
// answered to its sender: the processor's fingerprint must be the
// gateway's, never the raw value's.
func TestFingerprintSurvivesARetryableDecodeError(t *testing.T) {
	cfg := newConfig(t)
	cfg.Retryable = func(err error) bool { return errors.Is(err, errFlaky) }
	ensureTopics(t, cfg)
	agg := counters
	// What the service fills in (Text) is not part of the identity.
	agg.Identity = func(c cmd) cmd {
		if p, ok := c.(pad); ok {
			p.Text = ""
			return p
		}
		return c
	}
	procCodecs := codecs
	procCodecs.Command = &flakyCommands{Codec: codecs.Command}
	proc := eskafka.NewProcessor(agg, procCodecs, nil, cfg)
	outcomes, err := eskafka.NewOutcomes(cfg, proc.Topics().Results, nil)
	if err != nil {
		t.Fatal(err)
	}
	producer, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, eskafka.FailoverOpts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	gw := eskafka.NewGateway(agg, codecs, cfg.Service, producer, outcomes)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = outcomes.Run(ctx) }()
	go func() { defer close(done); _ = proc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	send := func(c cmd, idem bool) (*eskafka.Result[counter, event], error) {
		wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer wcancel()
		sent, err := gw.Send(wctx, c, eskafka.SendOptions{MsgID: ids.New(), Idempotent: idem})
		if err != nil {
			t.Fatal(err)
		}
		return gw.Await(wctx, sent)
	}
	// The first Decode of the processor (a fingerprint's, for the
	// idempotent command) fails once.
	res, err := send(pad{"x", "hello"}, true)
	if err != nil {
		t.Fatalf("idempotent command after a retryable decode error: no answer: %v", err)
	}
	if res.Outcome.Rejection == nil || res.Outcome.Rejection.Code != "not_found" {
		t.Fatalf("outcome %+v, want not_found", res.Outcome)
	}
}
