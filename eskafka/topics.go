// Package eskafka runs event-sourced aggregates on Kafka: it plans and
// checks the topics, processes commands exactly once in Kafka transactions,
// keeps local state stores caught up with changelog topics, and delivers
// command outcomes back to the callers waiting for them. It is generic: an
// aggregate is an es.Aggregate plus its codecs, and nothing here knows what
// any aggregate means.
//
// An App is the one place where an application registers its aggregates
// (Register) and other stages (App.AddStage): it plans their topics from
// what they read and write, creates and checks them, runs everything and
// reports readiness.
package eskafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topics are the names of one aggregate's topics.
type Topics struct {
	// Commands is the input: command records keyed by aggregate id.
	Commands string
	// Events is the public source of truth, kept forever.
	Events string
	// Changelog holds each aggregate's latest state (compacted); it
	// restores the local store.
	Changelog string
	// Results holds command outcomes for read-your-writes.
	Results string
	// Dedup holds the outcomes of idempotent commands by msgId
	// (compacted, internal); it restores the idempotency table.
	Dedup string
	// DeadLetter receives the commands the processor gave up on (their
	// output was refused, or handling them panicked), with headers
	// saying why; each also got a rejected outcome.
	DeadLetter string
}

// AggregateTopics names the topics of aggregate in service:
// {service}.{aggregate}.{kind}.
func AggregateTopics(service, aggregate string) Topics {
	p := service + "." + aggregate + "."
	return Topics{
		Commands:   p + "commands",
		Events:     p + "events",
		Changelog:  p + "changelog",
		Results:    p + "results",
		Dedup:      p + "dedup",
		DeadLetter: p + "deadletter",
	}
}

// Retention periods, in milliseconds, of the topics (docs/architecture.md,
// "Topics").
const (
	weekMS  = "604800000"
	dayMS   = "86400000"
	monthMS = "2592000000"
)

// TopicSpec is a topic the service needs, with the settings it creates it
// with and checks it against.
type TopicSpec struct {
	Name    string
	Configs map[string]string
}

// CleanupPolicy returns the spec's cleanup.policy.
func (s TopicSpec) CleanupPolicy() string { return s.Configs["cleanup.policy"] }

// Specs returns the settings of every topic of t.
func (t Topics) Specs() []TopicSpec {
	forever := func(policy string) map[string]string {
		return map[string]string{"cleanup.policy": policy, "retention.ms": "-1", "retention.bytes": "-1"}
	}
	return []TopicSpec{
		{Name: t.Commands, Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": weekMS}},
		{Name: t.Events, Configs: forever("delete")},
		{Name: t.Changelog, Configs: forever("compact")},
		{Name: t.Results, Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": dayMS}},
		// Idempotency keys are remembered for a week: compacted so
		// that a key keeps one entry, deleted after the retention.
		{Name: t.Dedup, Configs: map[string]string{"cleanup.policy": "compact,delete", "retention.ms": strconv.FormatInt(IdempotencyRetention.Milliseconds(), 10)}},
		// Kept a month: long enough for an operator to look.
		{Name: t.DeadLetter, Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": monthMS}},
	}
}

// EnsureTopics creates the missing topics of specs with partitions and
// replicationFactor, and checks existing ones: a topic whose partition count
// or cleanup policy disagrees is an error naming the topic and both values,
// for the service must refuse to start rather than misroute keys.
//
// With a replication factor of 3 or more, topics are created with
// min.insync.replicas=2 (MinInsyncReplicas), and every topic must have at
// least replicationFactor replicas and a min.insync.replicas of 2 or more:
// acks=all waits only for the replicas in sync, so with
// min.insync.replicas=1 a write is acknowledged while one broker alone has
// it, and lost with that broker.
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions int32, replicationFactor int16, specs ...TopicSpec) error {
	adm := kadm.NewClient(cl)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	cl.PurgeTopicsFromClient(names...) // ask the brokers, not a cache
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var missing []TopicSpec
	for _, s := range specs {
		d, ok := details[s.Name]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			missing = append(missing, s)
			continue
		}
		if d.Err != nil {
			return fmt.Errorf("describe topic %s: %w", s.Name, d.Err)
		}
	}
	for _, s := range missing {
		cfg := make(map[string]*string, len(s.Configs)+1)
		if isr := MinInsyncReplicas(replicationFactor); isr > 0 {
			cfg["min.insync.replicas"] = kadm.StringPtr(strconv.Itoa(isr))
		}
		for k, v := range s.Configs {
			cfg[k] = kadm.StringPtr(v)
		}
		resp, err := adm.CreateTopic(ctx, partitions, replicationFactor, cfg, s.Name)
		if err == nil {
			err = resp.Err
		}
		// Already there: another instance created it meanwhile; it is
		// checked below like every other.
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", s.Name, err)
		}
	}
	// Every topic, not only those created here: another instance may
	// have created one a moment ago, known to the broker that answered
	// the listing above and not yet to the next one asked.
	created := map[string]bool{}
	for _, s := range missing {
		created[s.Name] = true
	}
	if err := awaitTopics(ctx, cl, names, created); err != nil {
		return err
	}
	cl.PurgeTopicsFromClient(names...)
	if err := CheckTopics(ctx, adm, partitions, specs...); err != nil {
		return err
	}
	return checkReplication(ctx, adm, replicationFactor, names)
}

// MinInsyncReplicas returns the min.insync.replicas the service creates its
// topics with for a replication factor: 2 from a replication factor of 3,
// so that an acknowledged write (acks=all) is on two brokers at least and
// one broker may be down without stopping writes; 0 (the broker's default)
// below that, where no value gives both.
func MinInsyncReplicas(replicationFactor int16) int {
	if replicationFactor >= 3 {
		return 2
	}
	return 0
}

// checkReplication verifies, when replicationFactor asks for replication
// (3 or more), that every topic of names has that many replicas at least
// and a min.insync.replicas (its own or the broker's default) of 2 or more.
func checkReplication(ctx context.Context, adm *kadm.Client, replicationFactor int16, names []string) error {
	want := MinInsyncReplicas(replicationFactor)
	if want == 0 {
		return nil
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return fmt.Errorf("describe topic configs: %w", err)
	}
	var problems []string
	for _, name := range names {
		d := details[name]
		for _, p := range d.Partitions.Sorted() {
			if n := len(p.Replicas); n < int(replicationFactor) {
				problems = append(problems, fmt.Sprintf("topic %s has %d replicas of partition %d, want %d (REPLICATION_FACTOR)", name, n, p.Partition, replicationFactor))
				break
			}
		}
		rc, err := configs.On(name, nil)
		if err != nil {
			return fmt.Errorf("describe configs of %s: %w", name, err)
		}
		isr := 1 // Kafka's default
		for _, c := range rc.Configs {
			if c.Key == "min.insync.replicas" && c.Value != nil {
				if isr, err = strconv.Atoi(*c.Value); err != nil {
					return fmt.Errorf("topic %s: min.insync.replicas %q: %w", name, *c.Value, err)
				}
			}
		}
		if isr < want {
			problems = append(problems, fmt.Sprintf("topic %s has min.insync.replicas=%d, want %d or more with replication factor %d (an acknowledged write could live on one broker only; fix it with kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config min.insync.replicas=%d)", name, isr, want, replicationFactor, name, want))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("existing topics are less durable than the service's settings: %s", strings.Join(problems, "; "))
	}
	return nil
}

var errTopicMissing = errors.New("topic missing")

// awaitTopics waits until every broker knows the topics names, and the
// leader of each partition of those created. A new topic reaches the
// brokers one after the other, a moment after its creation; the checks that
// follow, and the clients of the service, may ask any broker (one that does
// not know the topic yet answers UNKNOWN_TOPIC_OR_PARTITION), so waiting
// until one broker knows it is not enough.
func awaitTopics(ctx context.Context, cl *kgo.Client, names []string, created map[string]bool) error {
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		lagging, err := topicsNotEverywhere(ctx, cl, names, created)
		if err == nil && len(lagging) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			why := strings.Join(lagging, "; ")
			if err != nil {
				why = err.Error()
			}
			return fmt.Errorf("waiting for topics to reach every broker (%s): %w", why, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// topicsNotEverywhere asks each broker of the cluster for the metadata of
// names and returns what some broker does not know yet: a topic, or the
// leader of a partition of a created topic.
func topicsNotEverywhere(ctx context.Context, cl *kgo.Client, names []string, created map[string]bool) ([]string, error) {
	brokers, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("list brokers: %w", err)
	}
	if len(brokers.Brokers) == 0 {
		return nil, errors.New("the cluster lists no broker")
	}
	var lagging []string
	for _, b := range brokers.Brokers {
		req := kmsg.NewPtrMetadataRequest()
		for _, n := range names {
			t := kmsg.NewMetadataRequestTopic()
			t.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, t)
		}
		resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
		if err != nil {
			lagging = append(lagging, fmt.Sprintf("broker %d: %v", b.NodeID, err))
			continue
		}
		known := map[string]bool{}
		for _, t := range resp.Topics {
			if t.Topic == nil {
				continue
			}
			ok := t.ErrorCode == 0 && len(t.Partitions) > 0
			for _, p := range t.Partitions {
				ok = ok && (!created[*t.Topic] || p.ErrorCode == 0 && p.Leader >= 0)
			}
			known[*t.Topic] = ok
		}
		for _, n := range names {
			if !known[n] {
				lagging = append(lagging, fmt.Sprintf("broker %d does not know %s yet", b.NodeID, n))
			}
		}
	}
	return lagging, nil
}

// CheckTopics verifies that every topic of specs exists with partitions
// partitions and its cleanup policy.
func CheckTopics(ctx context.Context, adm *kadm.Client, partitions int32, specs ...TopicSpec) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return fmt.Errorf("describe topic configs: %w", err)
	}
	var problems []string
	for _, s := range specs {
		d, ok := details[s.Name]
		if !ok || d.Err != nil {
			return fmt.Errorf("%w: %s", errTopicMissing, s.Name)
		}
		if n := int32(len(d.Partitions)); n != partitions {
			problems = append(problems, fmt.Sprintf("topic %s has %d partitions, want %d (all topics of a service need the same count so a key lands on the same partition everywhere)", s.Name, n, partitions))
		}
		rc, err := configs.On(s.Name, nil)
		if err != nil {
			return fmt.Errorf("describe configs of %s: %w", s.Name, err)
		}
		got := "delete" // Kafka's default
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil {
				got = *c.Value
			}
		}
		if normPolicy(got) != normPolicy(s.CleanupPolicy()) {
			problems = append(problems, fmt.Sprintf("topic %s has cleanup.policy=%s, want %s", s.Name, got, s.CleanupPolicy()))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("existing topics disagree with the service's settings: %s", strings.Join(problems, "; "))
	}
	return nil
}

func normPolicy(p string) string {
	parts := strings.Split(strings.ReplaceAll(p, " ", ""), ",")
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// Record headers the runtime reads and writes.
const (
	// HeaderMsgID carries a command's message id, and the id of the
	// command that caused an event or an outcome.
	HeaderMsgID = "msgId"
	// HeaderType carries the type name of a command or event.
	HeaderType = "type"
	// HeaderExpectedVersion carries a command's expected version.
	HeaderExpectedVersion = "expectedVersion"
	// HeaderIdempotent marks a command ("1") whose outcome is remembered
	// by msgId, so that a retry applies nothing again.
	HeaderIdempotent = "idempotent"
	// HeaderReplayOnly marks an idempotent command ("1") that is only to
	// be answered from the idempotency table, never decided
	// (SendOptions.ReplayOnly).
	HeaderReplayOnly = "replayOnly"
	// HeaderVersion carries the aggregate version an event produced.
	HeaderVersion = "version"
	// HeaderPosition carries an event's position in its aggregate's
	// whole stream: 1, 2, 3…, never reset.
	HeaderPosition = "position"
	// HeaderSubject carries who sent a command (the authenticated
	// subject), on the command and on its events.
	HeaderSubject = "subject"
	// HeaderFingerprint carries, on the outcome of an idempotent
	// command, the SHA-256 of the command record's value.
	HeaderFingerprint = "fingerprint"
)

func formatInt(v int64) []byte { return strconv.AppendInt(nil, v, 10) }
