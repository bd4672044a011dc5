package eskafka

import (
	"cmp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// instanceBalance plans a stage's assignment in two levels: partitions are
// spread evenly over the instances first, then over each instance's lanes
// (Config.Lanes), so that an instance running several lanes does not take
// more than its share of the group. At each level a member keeps what it
// owns now as far as its share allows (sticky), and the plan is then
// adjusted for cooperative rebalancing: a partition moving between members
// is left out of this generation, so that its owner revokes it first and
// the next generation hands it over.
type instanceBalance struct{}

// laneSuffix separates an instance id from a lane number in the group
// instance ids of lanes after the first (laneInstanceID).
const laneSuffix = ".lane"

// instanceOf returns the instance a group member belongs to: its group
// instance id without a lane suffix, or its member id when it has none.
func instanceOf(m *kmsg.JoinGroupResponseMember) string {
	if m.InstanceID == nil || *m.InstanceID == "" {
		return m.MemberID
	}
	id := *m.InstanceID
	if i := strings.LastIndex(id, laneSuffix); i > 0 && isDigits(id[i+len(laneSuffix):]) {
		return id[:i]
	}
	return id
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// Balance implements kgo.ConsumerBalancerBalance; the ownership balancer
// passes one topic (the inputs are co-partitioned).
func (instanceBalance) Balance(b *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	plan := b.NewPlan()
	for topic, n := range topics {
		type member struct {
			m    *kmsg.JoinGroupResponseMember
			inst string
		}
		var members []member
		// owner: partition -> member id, by the claim of the highest
		// generation (an older claim is stale: KIP-792).
		owner := map[int32]string{}
		ownerGen := map[int32]int32{}
		b.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
			if !slices.Contains(meta.Topics, topic) {
				return
			}
			members = append(members, member{m: m, inst: instanceOf(m)})
			for _, o := range meta.OwnedPartitions {
				if o.Topic != topic {
					continue
				}
				for _, p := range o.Partitions {
					if g, ok := ownerGen[p]; p >= 0 && p < n && (!ok || meta.Generation > g) {
						owner[p], ownerGen[p] = m.MemberID, meta.Generation
					}
				}
			}
		})
		if len(members) == 0 {
			continue
		}
		slices.SortFunc(members, func(a, c member) int {
			return cmp.Or(cmp.Compare(a.inst, c.inst), cmp.Compare(a.m.MemberID, c.m.MemberID))
		})
		instOf := map[string]string{} // member id -> instance
		var insts []string
		lanes := map[string][]string{} // instance -> member ids
		for _, mem := range members {
			instOf[mem.m.MemberID] = mem.inst
			if len(lanes[mem.inst]) == 0 {
				insts = append(insts, mem.inst)
			}
			lanes[mem.inst] = append(lanes[mem.inst], mem.m.MemberID)
		}
		// The partitions in the order instances keep them: each
		// member's first, then each one's second..., so that an
		// instance keeping part of what its lanes own keeps some of
		// each lane's, and its lanes need not trade partitions.
		rank := map[int32]int{}
		count := map[string]int{}
		for p := range n {
			if id, ok := owner[p]; ok {
				rank[p] = count[id]
				count[id]++
			}
		}
		all := make([]int32, n)
		for p := range n {
			all[p] = p
		}
		slices.SortStableFunc(all, func(a, c int32) int { return cmp.Compare(rank[a], rank[c]) })
		// Instances first, by what their members own...
		perInst := spread(all, insts, func(p int32) (string, bool) {
			id, ok := owner[p]
			return instOf[id], ok
		})
		// ...then each instance's lanes.
		for _, inst := range insts {
			perMember := spread(perInst[inst], lanes[inst], func(p int32) (string, bool) {
				id, ok := owner[p]
				return id, ok
			})
			for _, mem := range members {
				if ps := perMember[mem.m.MemberID]; len(ps) > 0 && mem.inst == inst {
					plan.AddPartitions(mem.m, topic, ps)
				}
			}
		}
	}
	plan.AdjustCooperative(b)
	return plan
}

// spread divides parts evenly over bins (sorted), each getting len/bins or
// one more; the bins that hold the most now get the extra ones. A bin keeps
// the parts it holds now (holder) up to its share, and the rest are dealt
// in order to the bins below their share.
func spread(parts []int32, bins []string, holder func(int32) (string, bool)) map[string][]int32 {
	out := make(map[string][]int32, len(bins))
	if len(bins) == 0 {
		return out
	}
	held := map[string][]int32{}
	for _, p := range parts {
		if h, ok := holder(p); ok {
			held[h] = append(held[h], p)
		}
	}
	order := slices.Clone(bins)
	slices.SortStableFunc(order, func(a, c string) int { return cmp.Compare(len(held[c]), len(held[a])) })
	base, extra := len(parts)/len(bins), len(parts)%len(bins)
	share := make(map[string]int, len(bins))
	for i, bin := range order {
		share[bin] = base
		if i < extra {
			share[bin]++
		}
	}
	taken := map[int32]bool{}
	for _, bin := range bins {
		for _, p := range held[bin] {
			if len(out[bin]) < share[bin] {
				out[bin] = append(out[bin], p)
				taken[p] = true
			}
		}
	}
	i := 0
	for _, p := range parts {
		if taken[p] {
			continue
		}
		for len(out[bins[i]]) >= share[bins[i]] {
			i++
		}
		out[bins[i]] = append(out[bins[i]], p)
	}
	return out
}
