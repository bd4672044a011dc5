package chaostest

// The Kafka cluster: its brokers are killed, frozen and restarted through
// scripts/kafka; what the cluster says of its partitions comes from its
// metadata.

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cluster is the Kafka cluster of CHAOS_KAFKA_DIR.
type cluster struct {
	dir     string // the cluster directory of scripts/kafka
	script  string // scripts/kafka
	brokers []string
	cl      *kgo.Client
	adm     *kadm.Client
}

func newCluster(t *testing.T, root, dir string, brokers []string) *cluster {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &cluster{dir: dir, script: filepath.Join(root, "scripts", "kafka"), brokers: brokers, cl: cl, adm: kadm.NewClient(cl)}
}

// run runs scripts/kafka with args and the cluster directory; a failure
// fails the test.
func (c *cluster) run(t *testing.T, args ...string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(c.script, append(args, c.dir)...)
	// A broker killed with a few hundred partitions recovers its logs
	// first: on a busy machine that takes longer than the script's
	// default wait.
	cmd.Env = append(os.Environ(), "KAFKA_START_TIMEOUT=300")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/kafka %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("scripts/kafka %s %s: %v", strings.Join(args, " "), filepath.Base(c.dir), time.Since(start).Round(time.Millisecond))
}

// node runs a per-broker command of scripts/kafka (kill, pause, resume,
// restart) on broker id.
func (c *cluster) node(t *testing.T, verb string, id int32) {
	t.Helper()
	c.run(t, verb, fmt.Sprint(id))
}

// partitionInfo is what the metadata says of one partition.
type partitionInfo struct {
	topic     string
	partition int32
	leader    int32
	isr       []int32
	replicas  []int32
}

// partitions returns the partitions of topics as the cluster's metadata
// has them now.
func (c *cluster) partitions(ctx context.Context, topics []string) ([]partitionInfo, error) {
	c.cl.PurgeTopicsFromClient(topics...)
	details, err := c.adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, err
	}
	var out []partitionInfo
	for _, td := range details.Sorted() {
		if td.Err != nil {
			return nil, fmt.Errorf("topic %s: %w", td.Topic, td.Err)
		}
		for _, p := range td.Partitions.Sorted() {
			out = append(out, partitionInfo{topic: td.Topic, partition: p.Partition, leader: p.Leader, isr: p.ISR, replicas: p.Replicas})
		}
	}
	return out, nil
}

// topLeader returns the broker that leads the most partitions of topics,
// with the count per broker.
func (c *cluster) topLeader(t *testing.T, topics []string) (int32, map[int32]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ps, err := c.partitions(ctx, topics)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	counts := map[int32]int{}
	for _, p := range ps {
		counts[p.leader]++
	}
	var top int32 = -1
	for _, b := range slices.Sorted(maps.Keys(counts)) {
		if top < 0 || counts[b] > counts[top] {
			top = b
		}
	}
	return top, counts
}

// ledBy returns the partitions (numbers) of topic that broker leads now.
func (c *cluster) ledBy(t *testing.T, topic string, broker int32) []int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ps, err := c.partitions(ctx, []string{topic})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	var out []int32
	for _, p := range ps {
		if p.leader == broker {
			out = append(out, p.partition)
		}
	}
	return out
}

// coordinators returns, for each transactional id given, the broker that
// coordinates it.
func (c *cluster) coordinators(ctx context.Context, txnIDs []string) map[string]int32 {
	out := map[string]int32{}
	d, err := c.adm.DescribeTransactions(ctx, txnIDs...)
	if err != nil {
		return out
	}
	for _, tx := range d.Sorted() {
		if tx.Err == nil {
			out[tx.TxnID] = tx.Coordinator
		}
	}
	return out
}

// awaitFenced polls the metadata until no partition of topics has broker
// as leader or in its ISR (the cluster fenced it), and returns when that
// happened; zero if not within timeout.
func (c *cluster) awaitFenced(topics []string, broker int32, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ps, err := c.partitions(ctx, topics)
		cancel()
		if err == nil && len(ps) > 0 {
			fenced := true
			for _, p := range ps {
				fenced = fenced && p.leader != broker && !slices.Contains(p.isr, broker)
			}
			if fenced {
				return time.Now()
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Time{}
}

// underReplicated returns the partitions of topics whose ISR is smaller
// than their replicas, or that have no leader.
func (c *cluster) underReplicated(ctx context.Context, topics []string) ([]string, error) {
	ps, err := c.partitions(ctx, topics)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ps {
		if p.leader < 0 || len(p.isr) < len(p.replicas) {
			out = append(out, fmt.Sprintf("%s/%d (leader %d, isr %v of %v)", p.topic, p.partition, p.leader, p.isr, p.replicas))
		}
	}
	return out, nil
}

// topicSettings returns, per topic, its replication factor and its
// min.insync.replicas, as the cluster describes them.
func (c *cluster) topicSettings(ctx context.Context, topics []string) (map[string]string, error) {
	ps, err := c.partitions(ctx, topics)
	if err != nil {
		return nil, err
	}
	rf := map[string]int{}
	for _, p := range ps {
		if n, ok := rf[p.topic]; !ok || len(p.replicas) < n {
			rf[p.topic] = len(p.replicas)
		}
	}
	configs, err := c.adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, topic := range topics {
		rc, err := configs.On(topic, nil)
		if err != nil {
			return nil, err
		}
		isr := "?"
		for _, cfg := range rc.Configs {
			if cfg.Key == "min.insync.replicas" && cfg.Value != nil {
				isr = *cfg.Value
			}
		}
		out[topic] = fmt.Sprintf("rf %d, min.insync.replicas %s", rf[topic], isr)
	}
	return out, nil
}

// openTransactions describes what holds read_committed readers back: the
// partitions of topics whose last stable offset is behind their high
// watermark, and every transaction the cluster has not ended, with its
// state, age and partitions.
func (c *cluster) openTransactions(ctx context.Context, topics []string) string {
	var b strings.Builder
	ends, err := c.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		fmt.Fprintf(&b, "list end offsets: %v; ", err)
	}
	stable, err := c.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		fmt.Fprintf(&b, "list last stable offsets: %v; ", err)
	}
	var behind []string
	ends.Each(func(e kadm.ListedOffset) {
		if s, ok := stable.Lookup(e.Topic, e.Partition); ok && s.Err == nil && e.Err == nil && s.Offset < e.Offset {
			behind = append(behind, fmt.Sprintf("%s/%d (stable %d, end %d)", e.Topic, e.Partition, s.Offset, e.Offset))
		}
	})
	fmt.Fprintf(&b, "partitions whose last stable offset is behind: %v; ", behind)
	listed, err := c.adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		fmt.Fprintf(&b, "list transactions: %v", err)
		return b.String()
	}
	var open []string
	for _, id := range listed.TransactionalIDs() {
		described, err := c.adm.DescribeTransactions(ctx, id)
		if err != nil {
			open = append(open, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		for _, tx := range described.Sorted() {
			switch tx.State {
			case "Empty", "CompleteCommit", "CompleteAbort":
				continue
			}
			age := time.Since(time.UnixMilli(tx.StartTimestamp)).Round(time.Second)
			open = append(open, fmt.Sprintf("%s: %s for %v (coordinator %d, producer %d epoch %d, partitions %v)",
				tx.TxnID, tx.State, age, tx.Coordinator, tx.ProducerID, tx.ProducerEpoch, tx.Topics))
		}
	}
	fmt.Fprintf(&b, "transactions not ended: %v", open)
	return b.String()
}
