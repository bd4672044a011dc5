package eskafka

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// transactionTimeout is the transaction timeout of every stage: a
// transaction left open by a crashed instance blocks readers of its
// partitions until the coordinator aborts it.
const transactionTimeout = 20 * time.Second

// BrokerSettings reads the configuration of one broker of the cluster and
// returns what in it costs the service throughput, latency or durability,
// one sentence per finding naming the setting, its value and what to set
// (docs/running.md, "Broker settings"). A broker that cannot say (an old
// or restricted one) yields an error; the caller logs it and goes on.
func BrokerSettings(ctx context.Context, adm *kadm.Client) ([]string, error) {
	// Every broker of a cluster is normally configured alike: one stands
	// for the others. It is asked by its id: without one, Apache Kafka
	// answers with the dynamic cluster-wide defaults only.
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("describe broker configs: %w", err)
	}
	if len(meta.Brokers) == 0 {
		return nil, nil
	}
	configs, err := adm.DescribeBrokerConfigs(ctx, meta.Brokers[0].NodeID)
	if err != nil {
		return nil, fmt.Errorf("describe broker configs: %w", err)
	}
	if len(configs) == 0 {
		return nil, nil
	}
	rc := configs[0]
	if rc.Err != nil {
		return nil, fmt.Errorf("describe broker %s configs: %w", rc.Name, rc.Err)
	}
	values := map[string]string{}
	for _, c := range rc.Configs {
		values[c.Key] = c.MaybeValue()
	}
	return brokerFindings(values), nil
}

// brokerFindings judges a broker's settings; values holds what the broker
// reported, a setting it did not report is not judged.
func brokerFindings(values map[string]string) []string {
	var out []string
	num := func(key string) (int64, bool) {
		v, ok := values[key]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	if n, ok := num("add.partitions.to.txn.retry.backoff.ms"); ok && n > 5 {
		out = append(out, fmt.Sprintf("broker setting add.partitions.to.txn.retry.backoff.ms=%d: a transaction that follows another on the same partitions waits this long for each retry; set it to 1 (docs/running.md, \"Broker settings\")", n))
	}
	if n, ok := num("transaction.max.timeout.ms"); ok && time.Duration(n)*time.Millisecond < transactionTimeout {
		out = append(out, fmt.Sprintf("broker setting transaction.max.timeout.ms=%d is below the stages' transaction timeout (%v): the brokers will refuse their producers; raise it to %d at least", n, transactionTimeout, transactionTimeout.Milliseconds()))
	}
	if values["unclean.leader.election.enable"] == "true" {
		out = append(out, "broker setting unclean.leader.election.enable=true: a replica that missed acknowledged writes may become leader and lose them; set it to false")
	}
	if n, ok := num("transaction.state.log.min.isr"); ok && n < 2 {
		if rf, ok := num("transaction.state.log.replication.factor"); ok && rf > 1 {
			out = append(out, fmt.Sprintf("broker setting transaction.state.log.min.isr=%d: a transaction may commit on a single replica of the transaction log; set it to 2", n))
		}
	}
	if n, ok := num("group.initial.rebalance.delay.ms"); ok && n > 3000 {
		out = append(out, fmt.Sprintf("broker setting group.initial.rebalance.delay.ms=%d: every stage of a fresh group waits this long before its first assignment; 0 to 3000 is enough", n))
	}
	return out
}
