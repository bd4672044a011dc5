package eskafka_test

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/store/memstore"
)

var clusterSecret = []byte("the cluster secret of this test!")

// joinRogue joins group as a consumer of topics with the group instance id
// instance, advertising url with secret (nil: none), as any process that
// reaches the brokers can; it leaves when the test ends.
func joinRogue(t *testing.T, cfg eskafka.Config, group, instance, url string, secret []byte, topics ...string) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(eskafka.MemberBalancer(url, instance, secret)),
		kgo.InstanceID(instance),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}, cfg.ClientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
}

// groupAssignments returns the partitions each member of group holds, by
// instance id (member id when not static), once the group is stable with
// n members; nil before.
func groupAssignments(t *testing.T, cfg eskafka.Config, group string, n int) map[string][]int32 {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	described, err := kadm.NewClient(cl).DescribeGroups(context.Background(), group)
	if err != nil {
		return nil
	}
	g, ok := described[group]
	if !ok || g.Err != nil || g.State != "Stable" || len(g.Members) != n {
		return nil
	}
	out := map[string][]int32{}
	for _, m := range g.Members {
		name := m.MemberID
		if m.InstanceID != nil {
			name = *m.InstanceID
		}
		var parts []int32
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range a.Topics {
				parts = append(parts, tp.Partitions...)
			}
		}
		slices.Sort(parts)
		out[name] = slices.Compact(parts)
	}
	return out
}

// A process that joins a processor's group advertising a URL, without the
// cluster secret, is given no partitions by an instance with the secret:
// writes on every partition keep flowing, and nothing is ever forwarded
// to its URL.
func TestRogueGroupMember(t *testing.T) {
	cfg := newConfig(t)
	cfg.InstanceID, cfg.AdvertisedURL, cfg.Store, cfg.ClusterSecret = "a", "http://a:9081", memstore.New(), clusterSecret
	a := start(t, cfg)
	waitFor(t, "a to own every partition", func() bool { return a.proc.Ready() && len(a.proc.Partitions()) == partitions })
	joinRogue(t, cfg, a.proc.Group(), "rogue1", "http://rogue.example:1", nil, a.proc.Topics().Commands)
	joinRogue(t, cfg, a.proc.Group(), "rogue2", "http://rogue.example:2", []byte("a secret that is not the cluster's"), a.proc.Topics().Commands)
	var held map[string][]int32
	waitFor(t, "the group to settle with a and the two rogues", func() bool {
		held = groupAssignments(t, cfg, a.proc.Group(), 3)
		return held != nil
	})
	if len(held["a"]) != partitions || len(held["rogue1"]) != 0 || len(held["rogue2"]) != 0 {
		t.Fatalf("assignments %v: want every partition on a, none on the rogues", held)
	}
	if owners := a.proc.Owners(); len(owners) != partitions || slices.ContainsFunc(slices.Collect(maps.Values(owners)), func(u string) bool { return u != "http://a:9081" }) {
		t.Fatalf("a's owners: %v", owners)
	}
	for i := range partitions * 3 {
		if res := a.do(open{key(i)}, eskafka.SendOptions{}); !res.Accepted() {
			t.Fatalf("write %d with rogues in the group: %+v", i, res.Outcome)
		}
	}
}

// A rogue process that became the group's leader (it joined first) can
// keep partitions from the instances (the group's ACLs must keep it out),
// but it cannot make an instance trust its ownership map: the instance
// forwards nowhere rather than to the rogue's URL.
func TestRogueGroupLeader(t *testing.T) {
	cfg := newConfig(t)
	cfg.InstanceID, cfg.AdvertisedURL, cfg.Store, cfg.ClusterSecret = "a", "http://a:9081", memstore.New(), clusterSecret
	ensureTopics(t, cfg)
	topics := eskafka.AggregateTopics(cfg.Service, "counters")
	group := cfg.Service + ".counters.processor"
	joinRogue(t, cfg, group, "rogue", "http://rogue.example:1", []byte("a secret that is not the cluster's"), topics.Commands)
	waitFor(t, "the rogue to lead the group", func() bool { return groupAssignments(t, cfg, group, 1) != nil })
	a := start(t, cfg)
	if a.proc.Group() != group {
		t.Fatalf("the processor's group is %s, not %s", a.proc.Group(), group)
	}
	var held map[string][]int32
	waitFor(t, "the group to settle with the rogue and a", func() bool {
		held = groupAssignments(t, cfg, group, 2)
		return held != nil && a.proc.Ready()
	})
	if owners := a.proc.Owners(); slices.Contains(slices.Collect(maps.Values(owners)), "http://rogue.example:1") {
		t.Fatalf("a trusts the rogue leader's map: %v (assignments %v)", owners, held)
	}
	if _, err := a.proc.Get(key(0)); err == nil {
		t.Fatalf("a serves a key though the rogue leader gave it nothing (assignments %v)", held)
	}
}

// The subject a command is sent with is on the command record and on
// every event it caused, so the history shows who did what; a command
// sent without one has none.
func TestSubjectOnCommandAndEvents(t *testing.T) {
	cfg := newConfig(t)
	e := start(t, cfg)
	e.waitReady()
	if res := e.do(open{"k"}, eskafka.SendOptions{Subject: "alice"}); !res.Accepted() {
		t.Fatalf("open: %+v", res.Outcome)
	}
	if res := e.do(add{"k", 2}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatalf("add: %+v", res.Outcome)
	}
	topics := e.proc.Topics()
	for _, topic := range []string{topics.Commands, topics.Events} {
		recs := readAll(t, cfg.Brokers, topic)
		if len(recs) != 2 {
			t.Fatalf("%s: %d records, want 2", topic, len(recs))
		}
		if got := header(recs[0], eskafka.HeaderSubject); got != "alice" {
			t.Errorf("%s: the first record's subject is %q, want alice", topic, got)
		}
		if got := header(recs[1], eskafka.HeaderSubject); got != "" {
			t.Errorf("%s: the second record's subject is %q, want none", topic, got)
		}
	}
}
