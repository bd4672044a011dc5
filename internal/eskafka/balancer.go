package eskafka

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ownershipBalancer wraps a group balancer (cooperative sticky) to tell
// every member who owns each partition, as Kafka Streams does for
// interactive queries: each member puts its advertised URL in its join
// metadata, and the leader puts the whole partition -> URL map in every
// member's assignment. Both ride in the user data, wrapped around the inner
// balancer's own user data, never replacing it.
type ownershipBalancer struct {
	inner kgo.GroupBalancer
	url   string
	// onAssignment receives the ownership map of each assignment, and
	// this member's whole assignment (topic -> partitions).
	onAssignment func(owners map[int32]string, mine map[string][]int32)
}

// userDataMagic starts our wrapped user data, so that a member of an older
// version without it is recognised rather than misparsed.
const userDataMagic = "catalog1"

func wrapUserData(ours, inner []byte) []byte {
	out := append([]byte(nil), userDataMagic...)
	out = binary.AppendUvarint(out, uint64(len(ours)))
	out = append(out, ours...)
	return append(out, inner...)
}

func unwrapUserData(b []byte) (ours, inner []byte, err error) {
	if !bytes.HasPrefix(b, []byte(userDataMagic)) {
		return nil, b, errors.New("user data without ownership envelope")
	}
	rest := b[len(userDataMagic):]
	n, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < n {
		return nil, nil, errors.New("truncated ownership envelope")
	}
	return rest[k : k+int(n)], rest[k+int(n):], nil
}

func (b *ownershipBalancer) ProtocolName() string { return b.inner.ProtocolName() }
func (b *ownershipBalancer) IsCooperative() bool  { return b.inner.IsCooperative() }

func (b *ownershipBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	raw := b.inner.JoinGroupMetadata(interests, current, generation)
	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(raw); err != nil {
		return raw
	}
	meta.UserData = wrapUserData([]byte(b.url), meta.UserData)
	return meta.AppendTo(nil)
}

func (b *ownershipBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("parse assignment: %w", err)
	}
	ours, inner, err := unwrapUserData(a.UserData)
	owners := map[int32]string{}
	if err == nil {
		var wire map[string]string
		if jerr := json.Unmarshal(ours, &wire); jerr == nil {
			for p, url := range wire {
				if n, perr := strconv.ParseInt(p, 10, 32); perr == nil {
					owners[int32(n)] = url
				}
			}
		}
	}
	a.UserData = inner
	parsed, err := b.inner.ParseSyncAssignment(a.AppendTo(nil))
	if err == nil && b.onAssignment != nil {
		b.onAssignment(owners, parsed)
	}
	return parsed, err
}

func (b *ownershipBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	urls := map[string]string{}
	unwrapped := make([]kmsg.JoinGroupResponseMember, len(members))
	for i, m := range members {
		unwrapped[i] = m
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.ProtocolMetadata); err != nil {
			continue
		}
		ours, inner, err := unwrapUserData(meta.UserData)
		if err != nil {
			continue
		}
		urls[m.MemberID] = string(ours)
		meta.UserData = inner
		unwrapped[i].ProtocolMetadata = meta.AppendTo(nil)
	}
	mb, topics, err := b.inner.MemberBalancer(unwrapped)
	if err != nil {
		return nil, nil, err
	}
	return &ownershipMemberBalancer{inner: mb, urls: urls}, topics, nil
}

type ownershipMemberBalancer struct {
	inner kgo.GroupMemberBalancer
	urls  map[string]string // member id -> advertised URL
}

// SetBalanceInfo passes the cluster's details to the inner balancer.
func (m *ownershipMemberBalancer) SetBalanceInfo(info kgo.BalanceInfo) {
	if in, ok := m.inner.(kgo.GroupMemberBalancerInfo); ok {
		in.SetBalanceInfo(info)
	}
}

// Balance implements kgo.GroupMemberBalancer; the client calls
// BalanceOrError instead.
func (m *ownershipMemberBalancer) Balance(topics map[string]int32) kgo.IntoSyncAssignment {
	into, err := m.BalanceOrError(topics)
	if err != nil {
		panic(err)
	}
	return into
}

// BalanceOrError balances with the inner balancer, then adds the ownership
// map to every member's assignment.
//
// The inputs are co-partitioned: partition p of every input topic is one
// unit of work with one store. The inner balancer balances topic-partitions
// and would place partition p of two inputs on different members, so it
// balances the first input only (by name), and every other input follows
// that plan.
func (m *ownershipMemberBalancer) BalanceOrError(topics map[string]int32) (kgo.IntoSyncAssignment, error) {
	names := slices.Sorted(maps.Keys(topics))
	if len(names) == 0 {
		return syncAssignments(nil), nil
	}
	lead := map[string]int32{names[0]: topics[names[0]]}
	var into kgo.IntoSyncAssignment
	if in, ok := m.inner.(kgo.GroupMemberBalancerOrError); ok {
		var err error
		if into, err = in.BalanceOrError(lead); err != nil {
			return nil, err
		}
	} else {
		into = m.inner.Balance(lead)
	}
	plan := into.IntoSyncAssignment()
	// Inputs are co-partitioned: owning partition p of any input topic
	// is owning partition p.
	owners := map[string]string{}
	parsed := make([]kmsg.ConsumerMemberAssignment, len(plan))
	ok := make([]bool, len(plan))
	for i, a := range plan {
		if err := parsed[i].ReadFrom(a.MemberAssignment); err != nil {
			continue
		}
		ok[i] = true
		var ps []int32
		for _, t := range parsed[i].Topics {
			if t.Topic == names[0] {
				ps = t.Partitions
			}
		}
		parsed[i].Topics = parsed[i].Topics[:0]
		for _, name := range names {
			parsed[i].Topics = append(parsed[i].Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: name, Partitions: slices.Clone(ps)})
		}
		for _, p := range ps {
			owners[strconv.Itoa(int(p))] = m.urls[a.MemberID]
		}
	}
	ours, _ := json.Marshal(owners)
	out := make([]kmsg.SyncGroupRequestGroupAssignment, len(plan))
	for i, a := range plan {
		out[i] = a
		if !ok[i] {
			continue
		}
		parsed[i].UserData = wrapUserData(ours, parsed[i].UserData)
		out[i].MemberAssignment = parsed[i].AppendTo(nil)
	}
	return syncAssignments(out), nil
}

type syncAssignments []kmsg.SyncGroupRequestGroupAssignment

func (s syncAssignments) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment { return s }
