package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReplicationFactor returns the replication factor for the topics a test
// creates on brokers: the number of brokers, at most 3. A cluster of
// scripts/kafka cluster has min.insync.replicas 2, which refuses writes to
// topics of one replica; a single broker has one.
func ReplicationFactor(t testing.TB, brokers []string) int16 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	meta, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("list the brokers: %v", err)
	}
	return int16(min(3, max(1, len(meta.Brokers))))
}
