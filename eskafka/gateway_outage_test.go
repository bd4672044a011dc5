package eskafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
)

// While Kafka is away, every write leaves its command in the producer's
// buffer (a record handed to a connection is not taken back). Once the
// buffer is full (franz-go's MaxBufferedRecords, 50,000 by default, or
// the App's byte bound), a Send fails at once. It used to block inside
// Produce, before it looked at its own context: the HTTP write hung for as
// long as Kafka was away instead of answering within WRITE_TIMEOUT.
func TestSendEndsWhenTheProducerBufferIsFull(t *testing.T) {
	e := startThenLoseTheBroker(t)

	// Writes during the outage: each one ends (504) when its deadline
	// passes, but its record stays buffered.
	ended, cancelEnded := context.WithCancel(context.Background())
	cancelEnded()
	const outage = 50_000 // franz-go's default MaxBufferedRecords
	for i := range outage {
		_, err := e.gw.Send(ended, add{"g", 1}, eskafka.SendOptions{MsgID: ids.New()})
		if !errors.Is(err, eskafka.ErrSendUnconfirmed) {
			t.Fatalf("send %d during the outage: %v", i, err)
		}
	}
	t.Logf("buffered records: %d", e.producer.BufferedProduceRecords())

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := e.gw.Send(ctx, add{"g", 1}, eskafka.SendOptions{MsgID: ids.New()}); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("send succeeded with the broker gone")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send still blocked 5s after its 500ms context ended: the producer's buffer is full and Produce waits with context.WithoutCancel")
	}
}
