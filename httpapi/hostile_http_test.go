package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// With every connection slot (HTTP_MAX_CONNS) held by kept-alive
// connections that sit idle after one cheap request each (GET /healthz,
// no token, no Host check), a new client is served at once: the longest
// idle connection gives its slot up. Before, it waited until the idle ones
// timed out (IdleTimeout, 60 s): one request per connection per minute
// shut everybody else out.
func TestIdleConnectionsDoNotLockOutNewClients(t *testing.T) {
	url := limitedServer(t, 2) + "/healthz"

	get := func(c *http.Client) error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	// The "attacker": two kept-alive connections, one request each, then
	// idle (a browser's connection pool does the same).
	for range 2 {
		idle := &http.Client{Transport: &http.Transport{}}
		if err := get(idle); err != nil {
			t.Fatal(err)
		}
	}
	// Another client.
	other := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	if err := get(other); err != nil {
		t.Fatalf("a new client, while the connection slots are held by idle keep-alive connections: %v after %s", err, time.Since(start).Round(time.Millisecond))
	}
}

// A list across instances of items so large that a page of them would be
// larger than the 64 MiB peers.get reads (in the catalog: GET
// /books?limit=200 over books near their 512 KiB limit) pages by bytes
// (MaxPageBytes: fewer items and a next cursor), and paging still returns
// every item once, in key order. Before, it was answered 503 "retry
// shortly", every time: the other instance's answer was cut at 64 MiB and
// failed to decode.
func TestListOfLargeItemsAcrossInstancesPages(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	all := map[string]person{}
	var want []string
	for i := range 140 {
		key := fmt.Sprintf("k%03d", i)
		all[key] = person{ID: key, Name: big, Version: 1}
		want = append(want, key)
	}
	a, _ := twoInstancesRendering(t, all, func(s person) any { return map[string]string{"id": s.ID, "name": s.Name} })
	var got []string
	next := ""
	for range 50 {
		u := a + "/people?limit=200"
		if next != "" {
			u += "&after=" + url.QueryEscape(next)
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Items []map[string]string `json:"items"`
			Next  string              `json:"next"`
		}
		if resp.StatusCode != http.StatusOK {
			var p Problem
			_ = json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, p.Detail)
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			got = append(got, it["id"])
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged through %d items, want the %d in key order", len(got), len(want))
	}
}

// Observe (the catalog_http_requests_total route label) is told the route
// pattern the ServeMux matched, also for authenticated and forwarded
// requests: authorize and checkForwarded hand the mux a copy of the request
// (WithContext), and logRequests used to read the pattern off the original
// and report "" ("unmatched" in the metrics).
func TestObserveSeesTheRouteOfAuthenticatedRequests(t *testing.T) {
	cfg, _ := accessConfig(Access{Authenticator: testTokens})
	var routes []string
	cfg.Observe = func(route string, _ int, _ time.Duration, _ bool) { routes = append(routes, route) }
	h := New(cfg)
	if w := (call{"POST", "/people", "w", createJane}).do(t, h); w.Code != 201 {
		t.Fatalf("POST /people: %d %s", w.Code, w.Body.String())
	}
	if w := (call{"GET", "/people", "", ""}).do(t, h); w.Code != 200 {
		t.Fatalf("GET /people: %d", w.Code)
	}
	if want := []string{"POST /people", "GET /people"}; !slices.Equal(routes, want) {
		t.Fatalf("routes observed %q, want %q", routes, want)
	}
}
