package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/eskafka"
)

// partReader is one instance's part of a store partitioned across
// instances: it holds every state but answers only for the keys of the
// partitions owners gives self.
type partReader struct {
	all    map[string]person
	owners map[int32]string
	self   string
}

// partitionOf places keys ending in an even digit on partition 0, the
// others on 1, so that each instance owns every other key.
func partitionOf(key string) int32 { return int32(key[len(key)-1]-'0') % 2 }

func (p partReader) Owner(key string) string  { return p.owners[partitionOf(key)] }
func (p partReader) Owners() map[int32]string { return p.owners }
func (p partReader) mine(key string) bool     { return p.Owner(key) == p.self }
func (p partReader) Get(key string) (person, error) {
	if !p.mine(key) {
		return person{}, eskafka.ErrNotOwner
	}
	s, ok := p.all[key]
	if !ok {
		return s, eskafka.ErrNotFound
	}
	return s, nil
}

func (p partReader) List(after string, limit int) ([]person, []string, bool, error) {
	var keys []string
	for k := range p.all {
		if k > after && p.mine(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > limit {
		keys = keys[:limit]
	}
	items := make([]person, len(keys))
	for i, k := range keys {
		items[i] = p.all[k]
	}
	return items, keys, false, nil
}

// twoInstances starts two instances of the API, each owning one of two
// partitions of the same people, and returns their URLs. The
// representation holds no key at all: the lists are merged by the keys
// each instance's store lists, never by a member of the items.
func twoInstances(t *testing.T, all map[string]person) (a, b string) {
	t.Helper()
	return twoInstancesRendering(t, all, func(s person) any { return map[string]string{"name": s.Name} })
}

// twoInstancesRendering is twoInstances with the items rendered by render.
func twoInstancesRendering(t *testing.T, all map[string]person, render func(person) any) (a, b string) {
	t.Helper()
	sa, sb := httptest.NewServer(nil), httptest.NewServer(nil)
	t.Cleanup(sa.Close)
	t.Cleanup(sb.Close)
	owners := map[int32]string{0: sa.URL, 1: sb.URL}
	for _, s := range []*httptest.Server{sa, sb} {
		cfg := testConfig()
		cfg.Peers, cfg.Partitions = &Peers{Self: s.URL, Secret: testSecret}, 2
		peopleIn(cfg).Reader = partReader{all: all, owners: owners, self: s.URL}
		peopleIn(cfg).Render = render
		s.Config.Handler = New(cfg)
	}
	return sa.URL, sb.URL
}

// TestListMergesInstances: a list read on either instance merges both
// instances' items in key order and pages through all of them with its
// cursor, although the keys are not in the representation; a single item
// owned by the other instance is forwarded there.
func TestListMergesInstances(t *testing.T) {
	all := map[string]person{}
	var want []string
	for i := range 23 {
		// The names sort in the opposite order of the keys, so that a
		// merge by anything but the keys shows.
		key, name := fmt.Sprintf("k%02d", i), fmt.Sprintf("n%02d", 99-i)
		all[key] = person{ID: key, Name: name, Version: 1}
		want = append(want, name)
	}
	a, b := twoInstances(t, all)
	for _, base := range []string{a, b} {
		for _, limit := range []int{1, 4, 10, 23, 100} {
			var got []string
			next := ""
			for range 30 {
				u := fmt.Sprintf("%s/people?limit=%d", base, limit)
				if next != "" {
					u += "&after=" + url.QueryEscape(next)
				}
				var page struct {
					Items []map[string]string `json:"items"`
					Next  string              `json:"next"`
					Keys  []string            `json:"keys"`
				}
				getJSON(t, u, &page)
				if page.Keys != nil {
					t.Fatalf("%s: a client's list carries the keys between instances: %v", u, page.Keys)
				}
				for _, it := range page.Items {
					got = append(got, it["name"])
				}
				if next = page.Next; next == "" {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("GET %s/people?limit=%d, paged: %v, want %v", base, limit, got, want)
			}
		}
	}
	var one map[string]string
	if resp := getJSON(t, a+"/people/k01", &one); one["name"] != "n98" || resp.Header.Get("X-Catalog-Served-By") != servedByPeer {
		t.Fatalf("GET /people/k01 on the instance that does not own it: %v, served by %q", one, resp.Header.Get("X-Catalog-Served-By"))
	}
}

// An instance whose list answer carries no keys (one of an earlier
// version) makes the merged list a 503, never a list out of order.
func TestListRefusesAnswerWithoutKeys(t *testing.T) {
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"items": []any{map[string]string{"name": "x"}}})
	}))
	defer old.Close()
	cfg := testConfig()
	cfg.Peers, cfg.Partitions = &Peers{Self: "http://self.example"}, 2
	peopleIn(cfg).Reader = partReader{all: map[string]person{}, owners: map[int32]string{0: "http://self.example", 1: old.URL}, self: "http://self.example"}
	w := (call{"GET", "/people", "", ""}).do(t, New(cfg))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "1 items with 0 keys") {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

func getJSON(t *testing.T, u string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		t.Fatalf("GET %s: %d %+v", u, resp.StatusCode, p)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp
}
