package eskafka

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ownershipBalancer wraps a group balancer (cooperative sticky) to tell
// every member who owns each partition, as Kafka Streams does for
// interactive queries: each member puts its advertised URL in its join
// metadata, and the leader puts the whole partition -> URL map in every
// member's assignment. Both ride in the user data, wrapped around the inner
// balancer's own user data, never replacing it.
//
// Whatever can join the consumer group can put anything in its metadata,
// and the URLs in the map are where reads get forwarded, so they are
// trusted only with proof. With a cluster secret (CLUSTER_SECRET):
//
//   - each member proves its URL with an HMAC over its group instance id
//     and URL (memberProof); the leader gives a member without a valid
//     proof no partitions at all (an empty assignment, so that it stays
//     idle in the group instead of rejoining again and again), and logs
//     it;
//   - the leader signs the ownership map it hands out (mapProof), and a
//     member drops a map whose signature fails (a leader without the
//     secret): then it forwards nowhere, and the partitions owned
//     elsewhere answer 503.
//
// Only the leader sees the members' proofs, never the other members. A
// process that joins without the secret but becomes leader can still
// withhold partitions (a denial of service that Kafka ACLs on the group
// must prevent: docs/security.md), but it cannot make any instance forward
// to a URL of its choosing.
//
// Without a secret, every member's URL is taken at its word, as long as it
// is an http(s) origin, and a member that sees several instances says
// loudly that it should have one.
type ownershipBalancer struct {
	inner      kgo.GroupBalancer
	url        string
	instanceID string
	// inputs are the stage's input topics, the only ones it balances
	// (nil: every topic the members subscribe to).
	inputs []string
	// secret is the cluster secret; empty: URLs are not proven.
	secret []byte
	log    *slog.Logger
	// onAssignment receives the ownership map of each assignment, and
	// this member's whole assignment (topic -> partitions).
	onAssignment func(owners map[int32]string, mine map[string][]int32)
	// warned: the warning about several instances without a secret was
	// given (once per balancer, that is per session).
	warned sync.Once
}

// newOwnershipBalancer returns the balancer of a stage's session.
func newOwnershipBalancer(cfg Config, inputs []string, log *slog.Logger, onAssignment func(map[int32]string, map[string][]int32)) *ownershipBalancer {
	return &ownershipBalancer{
		inner: kgo.CooperativeStickyBalancer(), url: cfg.AdvertisedURL, instanceID: cfg.InstanceID, inputs: inputs,
		secret: cfg.ClusterSecret, log: log, onAssignment: onAssignment,
	}
}

// IsOrigin reports whether u is an http(s) origin: a scheme of http or
// https, a host and an optional port, and nothing else (no user info,
// path, query or fragment). Only such URLs are ever forwarded to.
func IsOrigin(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" && p.Hostname() != "" &&
		p.User == nil && p.Path == "" && p.RawPath == "" && p.RawQuery == "" && !p.ForceQuery && p.Fragment == "" &&
		p.Opaque == "" && !strings.ContainsAny(u, " \t\r\n#?@\\")
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

// deriveKey derives a key for one purpose from the cluster secret, so that
// a proof of one kind never passes for another.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// memberProof is a member's proof of its advertised URL: an HMAC over its
// group instance id and URL. It is bound to the instance id, which the
// broker keeps unique in the group, so that a proof copied from the
// metadata of one instance cannot be used by another member alongside it.
func memberProof(secret []byte, instanceID, url string) []byte {
	m := hmac.New(sha256.New, deriveKey(secret, "catalog member url v1"))
	m.Write([]byte(instanceID))
	m.Write([]byte{0})
	m.Write([]byte(url))
	return m.Sum(nil)
}

// mapProof is the leader's signature over the ownership map it hands out.
func mapProof(secret, owners []byte) []byte {
	m := hmac.New(sha256.New, deriveKey(secret, "catalog ownership map v1"))
	m.Write(owners)
	return m.Sum(nil)
}

// joinData is what a member puts in its join metadata. Members of versions
// before proofs put the bare URL instead (it never starts with '{').
type joinData struct {
	URL   string `json:"url"`
	Proof []byte `json:"proof,omitempty"`
}

func parseJoinData(b []byte) joinData {
	var d joinData
	if len(b) > 0 && b[0] == '{' {
		if json.Unmarshal(b, &d) != nil {
			return joinData{}
		}
		return d
	}
	return joinData{URL: string(b)}
}

// assignmentData is what the leader puts in each member's assignment: the
// partition -> URL map (as sent, so that its signature can be checked over
// the very bytes) and the leader's signature over it. Leaders of versions
// before proofs put the bare map instead.
type assignmentData struct {
	Owners json.RawMessage `json:"owners"`
	Proof  []byte          `json:"proof,omitempty"`
}

func (b *ownershipBalancer) ProtocolName() string { return b.inner.ProtocolName() }
func (b *ownershipBalancer) IsCooperative() bool  { return b.inner.IsCooperative() }

func (b *ownershipBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	raw := b.inner.JoinGroupMetadata(interests, current, generation)
	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(raw); err != nil {
		return raw
	}
	d := joinData{URL: b.url}
	if len(b.secret) > 0 {
		d.Proof = memberProof(b.secret, b.instanceID, b.url)
	}
	ours, _ := json.Marshal(d)
	meta.UserData = wrapUserData(ours, meta.UserData)
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
		owners = b.trustedOwners(ours)
	}
	a.UserData = inner
	parsed, err := b.inner.ParseSyncAssignment(a.AppendTo(nil))
	if err == nil && b.onAssignment != nil {
		b.onAssignment(owners, parsed)
	}
	return parsed, err
}

// trustedOwners returns the partition -> URL map of an assignment's user
// data, keeping only what may be forwarded to: with a secret, nothing
// unless the leader's signature verifies; never a URL that is not an
// http(s) origin.
func (b *ownershipBalancer) trustedOwners(ours []byte) map[int32]string {
	owners := map[int32]string{}
	var d assignmentData
	raw := ours
	if json.Unmarshal(ours, &d) == nil && d.Owners != nil {
		raw = d.Owners
	}
	if len(b.secret) > 0 && (d.Owners == nil || !hmac.Equal(d.Proof, mapProof(b.secret, d.Owners))) {
		b.logger().Error("the group leader's ownership map has no valid proof: forwarding nowhere, reads of partitions owned elsewhere answer 503 (does every instance have the same CLUSTER_SECRET? is a process without it in the group?)")
		return owners
	}
	var wire map[string]string
	if json.Unmarshal(raw, &wire) != nil {
		return owners
	}
	urls := map[string]bool{}
	for p, u := range wire {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil {
			continue
		}
		if u != "" && !IsOrigin(u) {
			b.logger().Error("the ownership map names an owner URL that is not an http(s) origin: never forwarded to", "partition", n, "url", clipURL(u))
			continue
		}
		owners[int32(n)] = u
		if u != "" {
			urls[u] = true
		}
	}
	if len(b.secret) == 0 && len(urls) > 1 {
		b.warned.Do(func() {
			b.logger().Warn("SEVERAL INSTANCES WITHOUT CLUSTER_SECRET: whatever joins the consumer group can have reads forwarded to a URL it names and answer them; set the same CLUSTER_SECRET on every instance (docs/security.md)",
				"instances", slices.Sorted(maps.Keys(urls)))
		})
	}
	return owners
}

func (b *ownershipBalancer) logger() *slog.Logger {
	if b.log == nil {
		return slog.Default()
	}
	return b.log
}

// clipURL cuts a URL a member advertised for a log line.
func clipURL(u string) string {
	if len(u) > 100 {
		return strconv.Quote(u[:100]) + "…"
	}
	return strconv.Quote(u)
}

// MemberBalancer, run by the leader, reads each member's URL and proof and
// balances among the members that may own partitions: those with our
// envelope, an http(s) origin (or no URL) and, with a secret, a valid
// proof.
// The others get an empty assignment.
func (b *ownershipBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	urls := map[string]string{}
	var eligible []kmsg.JoinGroupResponseMember
	var excluded []string
	for _, m := range members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.ProtocolMetadata); err != nil {
			b.logger().Error("a group member's metadata does not parse: it gets no partitions", "member", m.MemberID, "err", err)
			excluded = append(excluded, m.MemberID)
			continue
		}
		ours, inner, err := unwrapUserData(meta.UserData)
		if err != nil {
			b.logger().Error("a group member advertises no URL (not an instance of this service?): it gets no partitions", "member", m.MemberID, "instance", deref(m.InstanceID))
			excluded = append(excluded, m.MemberID)
			continue
		}
		d := parseJoinData(ours)
		switch {
		case d.URL != "" && !IsOrigin(d.URL):
			// An empty URL is an instance nobody forwards to (a
			// test's, a tool's): it may own partitions, as before.
			b.logger().Error("a group member advertises a URL that is not an http(s) origin: it gets no partitions", "member", m.MemberID, "instance", deref(m.InstanceID), "url", clipURL(d.URL))
			excluded = append(excluded, m.MemberID)
			continue
		case len(b.secret) > 0 && !hmac.Equal(d.Proof, memberProof(b.secret, deref(m.InstanceID), d.URL)):
			b.logger().Error("a group member's advertised URL has no valid proof (no CLUSTER_SECRET, another one, or not an instance of this service): it gets no partitions and is never forwarded to",
				"member", m.MemberID, "instance", deref(m.InstanceID), "url", clipURL(d.URL), "proof", len(d.Proof) > 0)
			excluded = append(excluded, m.MemberID)
			continue
		}
		urls[m.MemberID] = d.URL
		meta.UserData = inner
		m.ProtocolMetadata = meta.AppendTo(nil)
		eligible = append(eligible, m)
	}
	// The inner balancer names the protocol and writes the join
	// metadata (what each member owns); the plan is instanceBalance's.
	mb, err := kgo.NewConsumerBalancer(instanceBalance{}, eligible)
	if err != nil {
		return nil, nil, err
	}
	topics := mb.MemberTopics()
	return &ownershipMemberBalancer{inner: mb, urls: urls, excluded: excluded, secret: b.secret, inputs: b.inputs}, topics, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type ownershipMemberBalancer struct {
	inner kgo.GroupMemberBalancer
	urls  map[string]string // member id -> advertised URL
	// excluded are the members that get no partitions.
	excluded []string
	secret   []byte
	inputs   []string
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
// that plan. Only the stage's own inputs are balanced: a member subscribed
// to some other topic that sorts first would otherwise lead the plan and,
// alone on it, be given every partition.
func (m *ownershipMemberBalancer) BalanceOrError(topics map[string]int32) (kgo.IntoSyncAssignment, error) {
	names := slices.Sorted(maps.Keys(topics))
	if m.inputs != nil {
		names = slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(m.inputs, n) })
	}
	var plan []kmsg.SyncGroupRequestGroupAssignment
	if len(names) > 0 {
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
		plan = into.IntoSyncAssignment()
	}
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
	d := assignmentData{}
	d.Owners, _ = json.Marshal(owners)
	if len(m.secret) > 0 {
		d.Proof = mapProof(m.secret, d.Owners)
	}
	ours, _ := json.Marshal(d)
	out := make([]kmsg.SyncGroupRequestGroupAssignment, len(plan), len(plan)+len(m.excluded))
	for i, a := range plan {
		out[i] = a
		if !ok[i] {
			continue
		}
		parsed[i].UserData = wrapUserData(ours, parsed[i].UserData)
		out[i].MemberAssignment = parsed[i].AppendTo(nil)
	}
	// An excluded member gets an assignment of nothing, not none: with
	// none it would fail to parse its sync and rejoin at once, making
	// the whole group rebalance again and again.
	for _, id := range m.excluded {
		var empty kmsg.ConsumerMemberAssignment
		empty.UserData = wrapUserData(ours, nil)
		out = append(out, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: empty.AppendTo(nil)})
	}
	return syncAssignments(out), nil
}

type syncAssignments []kmsg.SyncGroupRequestGroupAssignment

func (s syncAssignments) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment { return s }
