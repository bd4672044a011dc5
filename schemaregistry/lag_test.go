package schemaregistry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// TestNewOnLaggingBrokers creates registries on a cluster whose brokers
// learn of a new topic one after the other: New must wait until every
// broker knows the topic it created, for its reader may ask any of them
// (on Apache Kafka, a first start failed now and then with "list end
// offset: no answer for partition 0").
func TestNewOnLaggingBrokers(t *testing.T) {
	c := kafkatest.NewLaggingCluster(t, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 5 {
		topic := fmt.Sprintf("lag%d.schemas", i)
		reg, err := schemaregistry.New(ctx, c.ListenAddrs(), topic, schemaregistry.WithReplicationFactor(3))
		if err != nil {
			t.Fatalf("registry %d: New on a cluster whose brokers learn of new topics one after the other: %v", i, err)
		}
		if !c.KnownEverywhere(topic) {
			t.Errorf("New returned before every broker knew %s", topic)
		}
		if _, err := reg.Register(ctx, `{"type":"record","name":"x.Lag","fields":[{"name":"a","type":"long"}]}`); err != nil {
			t.Errorf("registry %d: register: %v", i, err)
		}
		reg.Close()
	}
}
