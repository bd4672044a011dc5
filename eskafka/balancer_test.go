package eskafka

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// member is one group member driven by hand through a balance: what it
// joins with, and what it makes of the assignment it gets.
type member struct {
	id string
	b  *ownershipBalancer
	// owners and mine are what its last assignment told it.
	owners map[int32]string
	mine   []int32
	logs   *bytes.Buffer
}

func newMember(t *testing.T, id, url string, secret []byte) *member {
	t.Helper()
	m := &member{id: id, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(m.logs, nil))
	m.b = newOwnershipBalancer(Config{AdvertisedURL: url, InstanceID: id, ClusterSecret: secret}, nil, log, func(owners map[int32]string, mine map[string][]int32) {
		m.owners = owners
		m.mine = nil
		for _, ps := range mine {
			m.mine = append(m.mine, ps...)
		}
		slices.Sort(m.mine)
	})
	return m
}

const balanceTopic = "t"

// balance runs one group balance with leader as the group leader and
// hands each member its assignment.
func balance(t *testing.T, leader *member, members ...*member) {
	t.Helper()
	var join []kmsg.JoinGroupResponseMember
	for _, m := range members {
		id := m.id
		join = append(join, kmsg.JoinGroupResponseMember{MemberID: m.id, InstanceID: &id,
			ProtocolMetadata: m.b.JoinGroupMetadata([]string{balanceTopic}, nil, -1)})
	}
	mb, _, err := leader.b.MemberBalancer(join)
	if err != nil {
		t.Fatal(err)
	}
	into, err := mb.(*ownershipMemberBalancer).BalanceOrError(map[string]int32{balanceTopic: 6})
	if err != nil {
		t.Fatal(err)
	}
	plan := into.IntoSyncAssignment()
	for _, m := range members {
		i := slices.IndexFunc(plan, func(a kmsg.SyncGroupRequestGroupAssignment) bool { return a.MemberID == m.id })
		if i < 0 {
			t.Fatalf("member %s got no assignment at all (it would rejoin again and again)", m.id)
		}
		if _, err := m.b.ParseSyncAssignment(plan[i].MemberAssignment); err != nil {
			t.Fatalf("member %s: %v", m.id, err)
		}
	}
}

// urls returns the distinct URLs of an ownership map.
func urls(owners map[int32]string) []string {
	var out []string
	for _, u := range owners {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

var secret = []byte("a cluster secret of some length!")

// With a secret, a member that cannot prove its URL gets no partitions,
// is in nobody's ownership map, and the leader logs it.
func TestBalancerExcludesUnprovenMembers(t *testing.T) {
	a := newMember(t, "a", "http://a:9081", secret)
	b := newMember(t, "b", "https://b:9081", secret)
	noSecret := newMember(t, "rogue1", "http://rogue:1", nil)
	wrongSecret := newMember(t, "rogue2", "http://rogue:2", []byte("another secret, not the cluster's"))
	balance(t, a, a, b, noSecret, wrongSecret)
	if got := append(slices.Clone(a.mine), b.mine...); len(got) != 6 || len(a.mine) == 0 || len(b.mine) == 0 {
		t.Fatalf("a has %v, b has %v: want the 6 partitions between them", a.mine, b.mine)
	}
	for _, m := range []*member{noSecret, wrongSecret} {
		if len(m.mine) != 0 {
			t.Fatalf("%s got partitions %v", m.id, m.mine)
		}
	}
	for _, m := range []*member{a, b} {
		if got := urls(m.owners); !slices.Equal(got, []string{"http://a:9081", "https://b:9081"}) || len(m.owners) != 6 {
			t.Fatalf("%s sees owners %v", m.id, m.owners)
		}
	}
	logs := a.logs.String()
	for _, want := range []string{`instance=rogue1 url="\"http://rogue:1\"" proof=false`, `instance=rogue2 url="\"http://rogue:2\"" proof=true`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the leader's log lacks %s:\n%s", want, logs)
		}
	}
}

// A proof is bound to the instance id: a member that copies another's URL
// and proof under its own instance id is refused.
func TestBalancerProofBoundToInstance(t *testing.T) {
	a := newMember(t, "a", "http://a:9081", secret)
	// The thief joins with exactly a's user data.
	stolen := a.b.JoinGroupMetadata([]string{balanceTopic}, nil, -1)
	id := "thief"
	join := []kmsg.JoinGroupResponseMember{
		{MemberID: "a", InstanceID: &a.id, ProtocolMetadata: a.b.JoinGroupMetadata([]string{balanceTopic}, nil, -1)},
		{MemberID: "thief", InstanceID: &id, ProtocolMetadata: stolen},
	}
	mb, _, err := a.b.MemberBalancer(join)
	if err != nil {
		t.Fatal(err)
	}
	if got := mb.(*ownershipMemberBalancer).excluded; !slices.Equal(got, []string{"thief"}) {
		t.Fatalf("excluded %v, want the thief", got)
	}
}

// A leader without the secret (a rogue process that became leader, or an
// instance configured without it) cannot make a member forward anywhere:
// its map is dropped, so nothing is forwarded and reads of the partitions
// owned elsewhere answer 503.
func TestBalancerDropsUnsignedMaps(t *testing.T) {
	for name, rogueSecret := range map[string][]byte{"no secret": nil, "another secret": []byte("not the cluster's secret at all!")} {
		t.Run(name, func(t *testing.T) {
			a := newMember(t, "a", "http://a:9081", secret)
			rogue := newMember(t, "rogue", "http://rogue:1", rogueSecret)
			balance(t, rogue, a, rogue)
			if len(a.owners) != 0 {
				t.Fatalf("a trusts the rogue leader's map: %v", a.owners)
			}
			if !strings.Contains(a.logs.String(), "ownership map has no valid proof") {
				t.Fatalf("a did not log the refused map:\n%s", a.logs.String())
			}
		})
	}
	// A map signed by the cluster's leader but altered on the way.
	a := newMember(t, "a", "http://a:9081", secret)
	d := assignmentData{Owners: json.RawMessage(`{"0":"http://a:9081"}`)}
	d.Proof = mapProof(secret, d.Owners)
	d.Owners = json.RawMessage(`{"0":"http://evil:1"}`)
	ours, _ := json.Marshal(d)
	if got := a.b.trustedOwners(ours); len(got) != 0 {
		t.Fatalf("altered map trusted: %v", got)
	}
	d.Owners = json.RawMessage(`{"0":"http://a:9081"}`)
	ours, _ = json.Marshal(d)
	if got := a.b.trustedOwners(ours); got[0] != "http://a:9081" {
		t.Fatalf("signed map not trusted: %v", got)
	}
}

// Whatever the secret, forwarding follows only http(s) origins: a member
// advertising anything else gets no partitions, and a map naming one has
// that entry dropped.
func TestBalancerOnlyOrigins(t *testing.T) {
	a := newMember(t, "a", "http://a:9081", nil)
	for _, bad := range []string{"file:///etc/passwd", "http://evil:1/path", "http://user:pw@evil:1", "gopher://evil:70", "http://evil:1?x", "//evil:1"} {
		rogue := newMember(t, "rogue", bad, nil)
		balance(t, a, a, rogue)
		if len(rogue.mine) != 0 || len(a.mine) != 6 {
			t.Fatalf("advertising %q: rogue has %v, a has %v", bad, rogue.mine, a.mine)
		}
		if slices.Contains(urls(a.owners), bad) {
			t.Fatalf("advertising %q: in the map", bad)
		}
	}
	ours, _ := json.Marshal(assignmentData{Owners: json.RawMessage(`{"0":"http://a:9081","1":"javascript:alert(1)","2":"http://b:1/x"}`)})
	if got := a.b.trustedOwners(ours); len(got) != 1 || got[0] != "http://a:9081" {
		t.Fatalf("map entries kept: %v", got)
	}
}

// Without a secret URLs are taken at their word (as before), and a member
// that sees several instances says loudly that they need a secret.
func TestBalancerWithoutSecretWarns(t *testing.T) {
	a := newMember(t, "a", "http://a:9081", nil)
	b := newMember(t, "b", "http://b:9081", nil)
	balance(t, a, a)
	if strings.Contains(a.logs.String(), "WITHOUT CLUSTER_SECRET") {
		t.Fatalf("one instance alone warned:\n%s", a.logs.String())
	}
	balance(t, a, a, b)
	balance(t, a, a, b)
	for _, m := range []*member{a, b} {
		if got := urls(m.owners); !slices.Equal(got, []string{"http://a:9081", "http://b:9081"}) {
			t.Fatalf("%s sees %v", m.id, m.owners)
		}
		if n := strings.Count(m.logs.String(), "SEVERAL INSTANCES WITHOUT CLUSTER_SECRET"); n != 1 {
			t.Fatalf("%s warned %d times, want once:\n%s", m.id, n, m.logs.String())
		}
	}
}

// Members and leaders of the version before proofs: a bare URL in the join
// metadata and a bare map in the assignment are still understood when no
// secret is set.
func TestBalancerReadsTheOldFormat(t *testing.T) {
	if d := parseJoinData([]byte("http://old:9081")); d.URL != "http://old:9081" || d.Proof != nil {
		t.Fatalf("old join data: %+v", d)
	}
	a := newMember(t, "a", "http://a:9081", nil)
	if got := a.b.trustedOwners([]byte(`{"0":"http://old:9081","1":"http://a:9081"}`)); len(got) != 2 || got[0] != "http://old:9081" {
		t.Fatalf("old map: %v", got)
	}
	withSecret := newMember(t, "s", "http://s:9081", secret)
	if got := withSecret.b.trustedOwners([]byte(`{"0":"http://old:9081"}`)); len(got) != 0 {
		t.Fatalf("an old, unsigned map trusted with a secret: %v", got)
	}
}

func TestIsOrigin(t *testing.T) {
	for u, want := range map[string]bool{
		"http://a":              true,
		"https://a.example:443": true,
		"http://127.0.0.1:9081": true,
		"http://[::1]:9081":     true,
		"http://a/":             false,
		"http://a/x":            false,
		"http://a?":             false,
		"http://a#f":            false,
		"http://u@a":            false,
		"ftp://a":               false,
		"a:9081":                false,
		"http://":               false,
		"http://:80":            false,
		"":                      false,
		"http://a b":            false,
		"HTTP://a":              true,
		"http://a\n":            false,
		"http://a%2fb":          false,
	} {
		if got := IsOrigin(u); got != want {
			t.Errorf("IsOrigin(%q) = %v, want %v", u, got, want)
		}
	}
}
