package eskafka

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinMember is a member of a join response: its group instance id and
// the partitions of topic "in" it owns as of generation gen.
func joinMember(t *testing.T, instance string, gen int32, owned ...int32) kmsg.JoinGroupResponseMember {
	t.Helper()
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = []string{"in"}
	meta.Generation = gen
	if len(owned) > 0 {
		meta.OwnedPartitions = []kmsg.ConsumerMemberMetadataOwnedPartition{{Topic: "in", Partitions: owned}}
	}
	m := kmsg.NewJoinGroupResponseMember()
	m.MemberID = instance + "-member"
	m.InstanceID = &instance
	m.ProtocolMetadata = meta.AppendTo(nil)
	return m
}

// plan balances members over n partitions of "in" and returns the
// partitions each instance id gets.
func plan(t *testing.T, n int32, members ...kmsg.JoinGroupResponseMember) map[string][]int32 {
	t.Helper()
	b, err := kgo.NewConsumerBalancer(instanceBalance{}, members)
	if err != nil {
		t.Fatal(err)
	}
	into, err := b.BalanceOrError(map[string]int32{"in": n})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int32{}
	for _, a := range into.IntoSyncAssignment() {
		var ca kmsg.ConsumerMemberAssignment
		if err := ca.ReadFrom(a.MemberAssignment); err != nil {
			t.Fatal(err)
		}
		var ps []int32
		for _, tp := range ca.Topics {
			ps = append(ps, tp.Partitions...)
		}
		slices.Sort(ps)
		for _, m := range members {
			if m.MemberID == a.MemberID {
				out[*m.InstanceID] = ps
			}
		}
	}
	return out
}

func perInstance(got map[string][]int32) map[string]int {
	n := map[string]int{}
	for id, ps := range got {
		inst := instanceOf(&kmsg.JoinGroupResponseMember{MemberID: id, InstanceID: &id})
		n[inst] += len(ps)
	}
	return n
}

// Partitions are shared between instances before lanes: two instances of
// three lanes over three partitions both get work; over six, three each.
func TestPlanSharesInstancesFirst(t *testing.T) {
	var members []kmsg.JoinGroupResponseMember
	for _, inst := range []string{"a", "b"} {
		for lane := range 3 {
			members = append(members, joinMember(t, laneInstanceID(inst, lane), 0))
		}
	}
	for n, want := range map[int32]map[string]int{3: {"a": 2, "b": 1}, 6: {"a": 3, "b": 3}, 7: {"a": 4, "b": 3}} {
		got := plan(t, n, members...)
		if per := perInstance(got); !maps.Equal(per, want) {
			t.Errorf("%d partitions: per instance %v, want %v (plan %v)", n, per, want, got)
		}
		for id, ps := range got {
			if len(ps) > int(n+5)/6 {
				t.Errorf("%d partitions: lane %s holds %v, more than its share", n, id, ps)
			}
		}
	}
}

// A member keeps what it owns, and a partition that moves is withheld for a
// generation (cooperative): a new instance joining takes only its share,
// and only from the next generation on.
func TestPlanIsStickyAndCooperative(t *testing.T) {
	got := plan(t, 6,
		joinMember(t, "a", 5, 0, 1, 2), joinMember(t, "a.lane1", 5, 3, 4, 5),
		joinMember(t, "b", 0), joinMember(t, "b.lane1", 0))
	if per := perInstance(got); per["a"] != 3 || per["b"] != 0 || len(got["a"]) == 0 || len(got["a.lane1"]) == 0 {
		t.Fatalf("first generation: %v (plan %v): want a to keep its share, 3, on both lanes, and b to wait for the revocation", per, got)
	}
	for id, ps := range got {
		for _, p := range ps {
			if !slices.Contains(map[string][]int32{"a": {0, 1, 2}, "a.lane1": {3, 4, 5}}[id], p) {
				t.Fatalf("%s gets %d, which it did not own: %v", id, p, got)
			}
		}
	}
	// Next generation: a revoked what it lost.
	var owned [][]int32
	for _, id := range []string{"a", "a.lane1"} {
		owned = append(owned, got[id])
	}
	got = plan(t, 6,
		joinMember(t, "a", 6, owned[0]...), joinMember(t, "a.lane1", 6, owned[1]...),
		joinMember(t, "b", 6), joinMember(t, "b.lane1", 6))
	if per := perInstance(got); per["a"] != 3 || per["b"] != 3 {
		t.Fatalf("second generation: %v (plan %v)", per, got)
	}
	for _, id := range []string{"a", "a.lane1"} {
		for _, p := range got[id] {
			if !slices.Contains(owned[slices.Index([]string{"a", "a.lane1"}, id)], p) {
				t.Fatalf("%s got %d back after revoking it: %v", id, p, got)
			}
		}
	}
	// A stale claim (an older generation) does not count as owning.
	got = plan(t, 2, joinMember(t, "a", 9, 0, 1), joinMember(t, "b", 3, 0))
	if fmt.Sprint(got["a"]) != "[0]" && fmt.Sprint(got["a"]) != "[1]" {
		t.Fatalf("plan with a stale claim: %v", got)
	}
}

func TestInstanceOf(t *testing.T) {
	for id, want := range map[string]string{"a": "a", "a.lane1": "a", "a.lane12": "a", "x.lanes": "x.lanes", "a.lane": "a.lane", ".lane1": ".lane1"} {
		if got := instanceOf(&kmsg.JoinGroupResponseMember{MemberID: "m", InstanceID: &id}); got != want {
			t.Errorf("instanceOf(%q) = %q, want %q", id, got, want)
		}
	}
	if got := instanceOf(&kmsg.JoinGroupResponseMember{MemberID: "m"}); got != "m" {
		t.Errorf("no instance id: %q", got)
	}
}
