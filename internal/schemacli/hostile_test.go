package schemacli_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/schemacli"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// A broker that answers everything but stops answering writes (frozen,
// or a partition leader gone with its connections still open): delete
// gives up at -timeout, saying so, rather than wait for ever for the
// tombstone's acknowledgement.
func TestDeleteGivesUpOnABrokerThatDoesNotAcknowledge(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	wake := make(chan struct{})
	t.Cleanup(kc.Close)
	t.Cleanup(func() { close(wake) }) // runs first: held writes return
	var hold atomic.Bool
	kc.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if hold.Load() {
			kc.SleepControl(func() { <-wake })
		}
		return nil, nil, false
	})
	brokers := kc.ListenAddrs()
	topic := "frozen.schemas"
	reg, err := schemaregistry.New(t.Context(), brokers, topic, schemaregistry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	fp, err := reg.Register(t.Context(), authorCreated)
	reg.Close()
	if err != nil {
		t.Fatal(err)
	}
	hold.Store(true)

	done := make(chan error, 1)
	go func() {
		done <- schemacli.Run(context.Background(), []string{"delete", avro.FormatFingerprint(fp),
			"-kafka-brokers", strings.Join(brokers, ","), "-service-name", "frozen", "-timeout", "2s"}, noEnv, io.Discard, io.Discard)
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
			t.Errorf("delete on a broker that does not acknowledge: %v; want the timeout", err)
		}
	case <-time.After(45 * time.Second): // a hang guard, far past -timeout
		t.Fatal("delete with -timeout 2s still waits for a broker that does not acknowledge")
	}
}

// A registry batch of a few KiB that decompresses to more than the service
// would ever read (eskafka.MaxBatchBytes) is skipped by the commands as by
// the service, rather than decompressed (franz-go's own bound is 1 GiB).
func TestListSkipsADecompressionBomb(t *testing.T) {
	c := newCluster(t)
	reg := c.registry(t)
	kafkatest.ProduceBatch(t, c.brokers, c.topic(), 0,
		kafkatest.ZstdBatch(kafkatest.ZstdRecords([]byte("bomb"), eskafka.MaxBatchBytes+1<<20)))
	fp, err := reg.Register(t.Context(), authorCreated)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, err := run(t, c.env, "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, avro.FormatFingerprint(fp)) {
		t.Errorf("list: %q; want the schema registered after the batch", out)
	}
	if !strings.Contains(stderr, "skipping a registry batch that decompresses past the client's bound") {
		t.Errorf("stderr: %q; want the batch skipped", stderr)
	}
}
