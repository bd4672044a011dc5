package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestAllowedHosts(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedHosts = []string{"localhost", "127.0.0.1", "::1", "Catalog.Example.", "[fe80::1]"}
	api := New(cfg)
	long := strings.Repeat("evil", 100) + ".example"
	for _, c := range []struct {
		host, path string
		status     int
		// named is how a refusal names the host.
		named string
	}{
		{"localhost:9081", "/people", http.StatusOK, ""},
		{"LOCALHOST:9081", "/people", http.StatusOK, ""},
		{"localhost", "/people", http.StatusOK, ""},
		{"127.0.0.1:9081", "/people", http.StatusOK, ""},
		{"[::1]:9081", "/people", http.StatusOK, ""},
		{"[::1]", "/people", http.StatusOK, ""},
		{"catalog.example:443", "/people", http.StatusOK, ""},
		{"catalog.example.", "/people", http.StatusOK, ""},
		{"[FE80::1]:1", "/people", http.StatusOK, ""},
		{"Attacker.example:9081", "/people", http.StatusMisdirectedRequest, `"attacker.example"`},
		{"attacker.example", "/", http.StatusMisdirectedRequest, `"attacker.example"`},
		{"localhost.attacker.example", "/people", http.StatusMisdirectedRequest, `"localhost.attacker.example"`},
		{"127.0.0.2:9081", "/metadata", http.StatusMisdirectedRequest, `"127.0.0.2"`},
		{"", "/people", http.StatusMisdirectedRequest, `""`},
		{long + ":80", "/people", http.StatusMisdirectedRequest, `"` + long[:maxEcho] + `"…`},
		// Probes name instances by addresses nobody lists.
		{"10.1.2.3:9081", "/healthz", http.StatusOK, ""},
		{"10.1.2.3:9081", "/readyz", http.StatusOK, ""},
	} {
		r := httptest.NewRequest(http.MethodGet, c.path, nil)
		r.Host = c.host
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		if rec.Code != c.status {
			t.Errorf("Host %q: status %d, want %d: %s", c.host, rec.Code, c.status, rec.Body.Bytes())
			continue
		}
		if c.status != http.StatusMisdirectedRequest {
			continue
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("Host %q: %q, %v", c.host, rec.Body.Bytes(), err)
		}
		if p.Status != http.StatusMisdirectedRequest || !strings.Contains(p.Detail, "ALLOWED_HOSTS") || p.Field != "Host" {
			t.Errorf("Host %q: problem %+v", c.host, p)
		}
		if !strings.Contains(p.Detail, "host "+c.named+";") {
			t.Errorf("Host %q: detail %q does not name %s", c.host, p.Detail, c.named)
		}
		if len(p.Detail) > maxDetail || strings.Contains(p.Detail, long) {
			t.Errorf("Host %q: detail echoes the whole host: %q", c.host, p.Detail)
		}
	}
}

func TestAllowedHostsOff(t *testing.T) {
	for _, allowed := range [][]string{nil, {}, {"*"}, {"localhost", "*"}} {
		cfg := testConfig()
		cfg.AllowedHosts = allowed
		r := httptest.NewRequest(http.MethodGet, "/people", nil)
		r.Host = "anything.example:1"
		rec := httptest.NewRecorder()
		New(cfg).ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Errorf("AllowedHosts %q: status %d", allowed, rec.Code)
		}
	}
}

func TestDefaultAllowedHosts(t *testing.T) {
	for _, c := range []struct {
		addr, advertised string
		want             []string
	}{
		{"localhost:9081", "http://localhost:9081", []string{"localhost", "127.0.0.1", "::1"}},
		{"127.0.0.1:9081", "http://catalog-1.internal:9081", []string{"localhost", "127.0.0.1", "::1", "catalog-1.internal"}},
		{"10.0.0.5:9081", "https://Catalog.Example/", []string{"localhost", "127.0.0.1", "::1", "10.0.0.5", "catalog.example"}},
		{"[::1]:9081", "http://[::1]:9081", []string{"localhost", "127.0.0.1", "::1"}},
		{"[fd00::5]:9081", "http://[fd00::5]:9081", []string{"localhost", "127.0.0.1", "::1", "fd00::5"}},
		{"catalog.internal:9081", "", []string{"localhost", "127.0.0.1", "::1", "catalog.internal"}},
		// A wildcard listen: no default check.
		{":9081", "http://catalog.example:9081", nil},
		{"0.0.0.0:9081", "http://catalog.example:9081", nil},
		{"[::]:9081", "http://catalog.example:9081", nil},
	} {
		if got := DefaultAllowedHosts(c.addr, c.advertised); !slices.Equal(got, c.want) {
			t.Errorf("DefaultAllowedHosts(%q, %q) = %q, want %q", c.addr, c.advertised, got, c.want)
		}
	}
}

// TestForwardedReadsPass: an instance forwards a read to its peer's
// advertised URL, and the peer's default allowed hosts include that URL's
// host.
func TestForwardedReadsPass(t *testing.T) {
	peer := testConfig()
	peerServer := httptest.NewServer(nil)
	defer peerServer.Close()
	peer.AllowedHosts = DefaultAllowedHosts("10.0.0.9:9081", peerServer.URL)
	peerServer.Config.Handler = New(peer)

	r := httptest.NewRequest(http.MethodGet, "/people/ja", nil)
	r.Host = "10.0.0.8:9081"
	rec := httptest.NewRecorder()
	p := &Peers{Self: "http://10.0.0.8:9081"}
	if !p.forward(rec, r, fixedOwner(peerServer.URL), "ja") {
		t.Fatal("not forwarded")
	}
	// The peer's fake has nobody: 404, not 421.
	if rec.Code != http.StatusNotFound || rec.Header().Get("X-Catalog-Served-By") != servedByPeer {
		t.Fatalf("forwarded read: %d %s", rec.Code, rec.Body.Bytes())
	}
}

// fixedOwner places every key on one instance.
type fixedOwner string

func (o fixedOwner) Owner(string) string { return string(o) }

func (o fixedOwner) Owners() map[int32]string { return map[int32]string{0: string(o)} }
