package eskafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Each setting known to cost the service is named with its value; the
// settings the service wants pass unremarked.
func TestBrokerFindings(t *testing.T) {
	good := map[string]string{
		"add.partitions.to.txn.retry.backoff.ms":   "1",
		"transaction.max.timeout.ms":               "900000",
		"unclean.leader.election.enable":           "false",
		"transaction.state.log.min.isr":            "2",
		"transaction.state.log.replication.factor": "3",
		"group.initial.rebalance.delay.ms":         "0",
	}
	if got := brokerFindings(good); len(got) != 0 {
		t.Fatalf("findings on good settings: %q", got)
	}
	for key, bad := range map[string]string{
		"add.partitions.to.txn.retry.backoff.ms": "20",
		"transaction.max.timeout.ms":             "5000",
		"unclean.leader.election.enable":         "true",
		"transaction.state.log.min.isr":          "1",
		"group.initial.rebalance.delay.ms":       "10000",
	} {
		values := map[string]string{}
		for k, v := range good {
			values[k] = v
		}
		values[key] = bad
		got := brokerFindings(values)
		if len(got) != 1 || !strings.Contains(got[0], key+"="+bad) {
			t.Errorf("%s=%s: findings %q, want one naming it", key, bad, got)
		}
	}
}

// The settings are read from a broker: one whose transaction.max.timeout.ms
// is below the stages' transaction timeout is reported.
func TestBrokerSettingsReadsTheBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.BrokerConfigs(map[string]string{"transaction.max.timeout.ms": "5000"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wantMaxTimeoutNamed(t, c)
}

// Apache Kafka answers a broker resource without a name (the cluster-level
// request) with the dynamic cluster-wide defaults only, not the broker's
// server.properties or built-in defaults: the settings are read from one
// broker by its id, or nothing is ever judged on a real cluster.
func TestBrokerSettingsAsksABrokerByID(t *testing.T) {
	c, err := kfake.NewCluster(kfake.BrokerConfigs(map[string]string{"transaction.max.timeout.ms": "5000"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ControlKey(kmsg.DescribeConfigs.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.DescribeConfigsRequest)
		for _, r := range req.Resources {
			if r.ResourceType != kmsg.ConfigResourceTypeBroker || r.ResourceName != "" {
				return nil, nil, false
			}
		}
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, r := range req.Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			resp.Resources = append(resp.Resources, rr) // no dynamic defaults set
		}
		return resp, nil, true
	})
	wantMaxTimeoutNamed(t, c)
}

// wantMaxTimeoutNamed checks that BrokerSettings, asked of c, names its
// transaction.max.timeout.ms=5000 and nothing else.
func wantMaxTimeoutNamed(t *testing.T, c *kfake.Cluster) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := BrokerSettings(ctx, kadm.NewClient(cl))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], "transaction.max.timeout.ms=5000") {
		t.Fatalf("findings %q, want transaction.max.timeout.ms=5000 named", got)
	}
}
