package eskafka_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/kafkatest"
)

// TestEnsureTopicsWaitsForEveryBroker creates the topics of fresh services
// on a cluster whose brokers learn of a new topic one after the other:
// EnsureTopics must not fail because the broker asked after the creation
// does not know a topic yet ("topic missing"), and a broker asked later
// (by the service's clients) must know every topic when it returns.
func TestEnsureTopicsWaitsForEveryBroker(t *testing.T) {
	c := kafkatest.NewLaggingCluster(t, 300*time.Millisecond)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 5 {
		specs := eskafka.AggregateTopics("lag"+strconv.Itoa(i), "things").Specs()
		if err := eskafka.EnsureTopics(ctx, cl, 3, 3, specs...); err != nil {
			t.Fatalf("service %d: EnsureTopics on a cluster whose brokers learn of new topics one after the other: %v", i, err)
		}
		for _, s := range specs {
			if !c.KnownEverywhere(s.Name) {
				t.Errorf("EnsureTopics returned before every broker knew %s", s.Name)
			}
		}
	}
}

// TestEnsureTopicsReplication checks that topics created with a
// replication factor of 3 get min.insync.replicas=2, and that topics that
// exist with fewer replicas or a min.insync.replicas of 1 make EnsureTopics
// with a replication factor of 3 fail, naming both.
func TestEnsureTopicsReplication(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	replicated := eskafka.AggregateTopics("replicated", "things").Specs()
	if err := eskafka.EnsureTopics(ctx, cl, 3, 3, replicated...); err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(replicated))
	for i, s := range replicated {
		names[i] = s.Name
	}
	configs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		rc, err := configs.On(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		isr := ""
		for _, c := range rc.Configs {
			if c.Key == "min.insync.replicas" && c.Value != nil {
				isr = *c.Value
			}
		}
		if isr != "2" {
			t.Errorf("topic %s created with replication factor 3 has min.insync.replicas %q, want 2", name, isr)
		}
	}
	// Started again with the same settings: the topics pass the check.
	if err := eskafka.EnsureTopics(ctx, cl, 3, 3, replicated...); err != nil {
		t.Errorf("EnsureTopics on the topics it created: %v", err)
	}

	single := eskafka.AggregateTopics("single", "things").Specs()
	if err := eskafka.EnsureTopics(ctx, cl, 3, 1, single...); err != nil {
		t.Fatal(err)
	}
	err = eskafka.EnsureTopics(ctx, cl, 3, 3, single...)
	if err == nil {
		t.Fatal("EnsureTopics with replication factor 3 accepted topics with one replica and min.insync.replicas=1")
	}
	for _, want := range []string{"single.things.events has 1 replicas", "single.things.events has min.insync.replicas=1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}
