package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// An owner (a rogue group member, without CLUSTER_SECRET) answering a
// forwarded read with HTML and a redirect elsewhere: its HTML was served,
// sniffable, from the catalog's own origin, with its Location. Found by
// review; the test failed before.
func TestForwardPassesOnOnlyJSON(t *testing.T) {
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Location", "https://evil.example/")
		_, _ = io.WriteString(w, `<script>alert(document.domain)</script>`)
	}))
	defer owner.Close()
	cfg, _ := accessConfig(Access{})
	cfg.Peers = &Peers{Self: "http://self.example:9081"} // no CLUSTER_SECRET
	peopleIn(cfg).Reader, cfg.Partitions = ownedReader{ownedBy(owner.URL)}, 3
	w := (call{"GET", "/people/jane", "", ""}).do(t, New(cfg))
	if w.Code != http.StatusBadGateway || strings.Contains(w.Body.String(), "<script>") || w.Header().Get("Location") != "" {
		t.Fatalf("a forwarded HTML answer: %d, Content-Type %q, Location %q: %s", w.Code, w.Header().Get("Content-Type"), w.Header().Get("Location"), w.Body.String())
	}
	if !strings.Contains(w.Body.String(), "not JSON") {
		t.Fatalf("the problem does not say why: %s", w.Body.String())
	}
}

// An anonymous read of a key owned elsewhere named the owner's internal
// URL in X-Catalog-Served-By, while /metadata, which lists the URLs, needs
// the admin role. Found by review; the test failed before.
func TestServedByDoesNotNameThePeer(t *testing.T) {
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, person{ID: "jane", Name: "Jane", Version: 1})
	}))
	defer owner.Close()
	cfg, _ := accessConfig(Access{Authenticator: testTokens})
	cfg.Peers = &Peers{Self: "http://self.example:9081", Secret: testSecret}
	peopleIn(cfg).Reader, cfg.Partitions = ownedReader{ownedBy(owner.URL)}, 3
	h := New(cfg)
	if w := (call{"GET", "/metadata", "", ""}).do(t, h); w.Code != http.StatusUnauthorized {
		t.Fatalf("GET /metadata, anonymous: %d", w.Code)
	}
	w := (call{"GET", "/people/jane", "", ""}).do(t, h)
	if w.Code != http.StatusOK || strings.Contains(w.Header().Get("X-Catalog-Served-By"), strings.TrimPrefix(owner.URL, "http://")) {
		t.Fatalf("an anonymous read: %d, served by %q", w.Code, w.Header().Get("X-Catalog-Served-By"))
	}
}
