package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/auth"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
)

// tokens is an authenticator over a fixed map; the token "down" cannot be
// checked (the identity provider is unreachable).
type tokens map[string]*auth.Principal

func (m tokens) Authenticate(_ context.Context, token string) (*auth.Principal, error) {
	if token == "down" {
		return nil, fmt.Errorf("%w: keys unavailable", auth.ErrUnavailable)
	}
	if p, ok := m[token]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("%w: not known", auth.ErrInvalidToken)
}

var testTokens = tokens{
	"r": {Subject: "rita", Roles: []auth.Role{auth.RoleReader}},
	"w": {Subject: "alice", Roles: []auth.Role{auth.RoleWriter}},
	"a": {Subject: "ops", Roles: []auth.Role{auth.RoleAdmin}},
	"n": {Subject: "nobody"},
}

// sent records the options of every command an API sends.
type sent[S, C, E any] struct {
	Writer[S, C, E]
	mu   sync.Mutex
	opts []eskafka.SendOptions
}

func (s *sent[S, C, E]) Send(ctx context.Context, cmd C, opt eskafka.SendOptions) (eskafka.Sent, error) {
	s.mu.Lock()
	s.opts = append(s.opts, opt)
	s.mu.Unlock()
	return s.Writer.Send(ctx, cmd, opt)
}

func (s *sent[S, C, E]) last() eskafka.SendOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts[len(s.opts)-1]
}

// accessConfig is testConfig with the operator endpoints and the page
// mounted, and a the access policy.
func accessConfig(a Access) (Config, *sent[person, personCommand, personEvent]) {
	cfg := testConfig()
	rec := &sent[person, personCommand, personEvent]{Writer: peopleIn(cfg).Writer}
	peopleIn(cfg).Writer = rec
	cfg.Metadata = func() any { return map[string]string{"self": "http://a"} }
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	cfg.Extra = map[string]http.Handler{"GET /metrics": ok, "GET /{$}": ok, "GET /ui/": ok, "GET /events/stream": ok}
	cfg.Access = a
	return cfg, rec
}

type call struct {
	method, path, token, body string
}

func (c call) do(t *testing.T, h http.Handler, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r := httptest.NewRequest(c.method, c.path, body)
	if c.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const createJane = `{"id":"jane","name":"Jane Austen"}`

func TestAccessPolicy(t *testing.T) {
	for _, c := range []struct {
		reads bool
		call
		status int
		// challenge is the WWW-Authenticate a 401 or 403 must carry.
		challenge string
		code      string
	}{
		// Writes need the writer role.
		{false, call{"POST", "/people", "", createJane}, 401, `Bearer realm="catalog"`, "token_required"},
		{false, call{"POST", "/people", "x", createJane}, 401, `Bearer realm="catalog", error="invalid_token"`, "invalid_token"},
		{false, call{"POST", "/people", "r", createJane}, 403, `Bearer realm="catalog", error="insufficient_scope"`, "insufficient_role"},
		{false, call{"POST", "/people", "n", createJane}, 403, `Bearer realm="catalog", error="insufficient_scope"`, "insufficient_role"},
		{false, call{"POST", "/people", "w", createJane}, 201, "", ""},
		{false, call{"POST", "/people", "a", createJane}, 201, "", ""},
		{false, call{"POST", "/people", "down", createJane}, 503, "", "auth_unavailable"},
		{false, call{"PUT", "/people/jane", "", `{"name":"J A"}`}, 401, `Bearer realm="catalog"`, "token_required"},
		{false, call{"DELETE", "/people/jane", "", ""}, 401, `Bearer realm="catalog"`, "token_required"},
		{false, call{"DELETE", "/people/jane", "r", ""}, 403, `Bearer realm="catalog", error="insufficient_scope"`, "insufficient_role"},
		{false, call{"POST", "/people/commands", "", `{"type":"removePerson","id":"jane"}`}, 401, `Bearer realm="catalog"`, "token_required"},
		{false, call{"POST", "/people/commands", "r", `{"type":"removePerson","id":"jane"}`}, 403, `Bearer realm="catalog", error="insufficient_scope"`, "insufficient_role"},
		{false, call{"POST", "/people/commands", "w", `{"type":"addPerson","id":"jane","name":"J"}`}, 202, "", ""},
		// A write to nowhere is still a write: no token, no answer.
		{false, call{"POST", "/nowhere", "", ""}, 401, `Bearer realm="catalog"`, "token_required"},
		// Reads are open unless AUTH_READS.
		{false, call{"GET", "/people", "", ""}, 200, "", ""},
		{false, call{"GET", "/people/commands/x?wait=0s", "", ""}, 404, "", ""},
		{false, call{"GET", "/events/stream", "", ""}, 200, "", ""},
		// Operator endpoints need the admin role.
		{false, call{"GET", "/metrics", "", ""}, 401, `Bearer realm="catalog"`, "token_required"},
		{false, call{"GET", "/metadata", "w", ""}, 403, `Bearer realm="catalog", error="insufficient_scope"`, "insufficient_role"},
		{false, call{"GET", "/metadata", "a", ""}, 200, "", ""},
		{false, call{"GET", "/metrics", "a", ""}, 200, "", ""},
		// Probes and the page are open.
		{true, call{"GET", "/healthz", "", ""}, 200, "", ""},
		{true, call{"GET", "/readyz", "", ""}, 200, "", ""},
		{true, call{"GET", "/", "", ""}, 200, "", ""},
		{true, call{"GET", "/ui/app.js", "", ""}, 200, "", ""},
		// With AUTH_READS, reads need a token of any role.
		{true, call{"GET", "/people", "", ""}, 401, `Bearer realm="catalog"`, "token_required"},
		{true, call{"GET", "/people/jane", "x", ""}, 401, `Bearer realm="catalog", error="invalid_token"`, "invalid_token"},
		{true, call{"GET", "/events/stream", "", ""}, 401, `Bearer realm="catalog"`, "token_required"},
		{true, call{"GET", "/people", "n", ""}, 403, `Bearer realm="catalog", error="insufficient_scope"`, "insufficient_role"},
		{true, call{"GET", "/people", "r", ""}, 200, "", ""},
		{true, call{"HEAD", "/people", "r", ""}, 200, "", ""},
	} {
		name := fmt.Sprintf("reads=%v %s %s token=%q", c.reads, c.method, c.path, c.token)
		t.Run(name, func(t *testing.T) {
			cfg, _ := accessConfig(Access{Authenticator: testTokens, Reads: c.reads})
			w := c.do(t, New(cfg))
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body.String())
			}
			if got := w.Header().Get("WWW-Authenticate"); got != c.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
			if c.code == "" {
				return
			}
			var p Problem
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != c.status || p.Code != c.code || p.Detail == "" {
				t.Fatalf("problem %+v (%v), want status %d code %s", p, err, c.status, c.code)
			}
			if c.status == 503 && w.Header().Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		})
	}
}

// The problems say what is missing, in words a user can act on.
func TestAccessProblemsExplain(t *testing.T) {
	cfg, _ := accessConfig(Access{Authenticator: testTokens})
	h := New(cfg)
	for _, c := range []struct {
		call
		header []string
		want   string
	}{
		{call{"POST", "/people", "", createJane}, nil, "a write (POST) needs a bearer token (Authorization: Bearer <token>) with the writer role"},
		{call{"POST", "/people", "", createJane}, []string{"Authorization", "Basic YTpi"}, `the Authorization header must be "Bearer <token>"`},
		{call{"POST", "/people", "r", createJane}, nil, `a write (POST) needs the writer role; "rita" has the role reader`},
		{call{"GET", "/metadata", "n", ""}, nil, `"/metadata" (an operator endpoint) needs the admin role; "nobody" has no role`},
		{call{"POST", "/people", "x", createJane}, nil, "the bearer token was refused: not known"},
	} {
		w := c.do(t, h, c.header...)
		var p Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || !strings.Contains(p.Detail, c.want) {
			t.Errorf("%s %s: %s (%v)\nwant it to say %q", c.method, c.path, w.Body.String(), err, c.want)
		}
	}
}

// Without an authenticator everything is open, as on a laptop.
func TestAccessOff(t *testing.T) {
	cfg, rec := accessConfig(Access{})
	h := New(cfg)
	for _, c := range []call{{"POST", "/people", "", createJane}, {"GET", "/metadata", "", ""}, {"GET", "/metrics", "", ""}} {
		if w := c.do(t, h); w.Code >= 400 || w.Header().Get("WWW-Authenticate") != "" {
			t.Fatalf("%s %s: %d %s", c.method, c.path, w.Code, w.Body.String())
		}
	}
	if got := rec.last().Subject; got != "" {
		t.Fatalf("subject %q without authentication", got)
	}
}

// The subject of the token goes with the command; an Idempotency-Key is
// the caller's own: the same key from two callers makes two commands.
func TestSubjectGoesWithTheCommand(t *testing.T) {
	cfg, rec := accessConfig(Access{Authenticator: testTokens})
	h := New(cfg)
	if w := (call{"POST", "/people", "w", createJane}).do(t, h); w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body.String())
	}
	if got := rec.last().Subject; got != "alice" {
		t.Fatalf("subject %q, want alice", got)
	}
	if w := (call{"POST", "/people/commands", "a", `{"type":"removePerson","id":"jane"}`}).do(t, h); w.Code != 202 {
		t.Fatalf("command: %d %s", w.Code, w.Body.String())
	}
	if got := rec.last().Subject; got != "ops" {
		t.Fatalf("subject %q, want ops", got)
	}

	body := `{"id":"mary","name":"Mary Shelley"}`
	(call{"POST", "/people", "w", body}).do(t, h, "Idempotency-Key", "k1")
	alice := rec.last().MsgID
	(call{"POST", "/people", "a", body}).do(t, h, "Idempotency-Key", "k1")
	if ops := rec.last().MsgID; ops == alice {
		t.Fatal("two callers with the same Idempotency-Key share a msgId")
	}
	(call{"POST", "/people", "w", body}).do(t, h, "Idempotency-Key", "k1")
	if again := rec.last().MsgID; again != alice {
		t.Fatalf("a retry by the same caller has msgId %s, not %s", again, alice)
	}
	// Without authentication the id is what it always was.
	open, rec2 := accessConfig(Access{})
	(call{"POST", "/people", "", body}).do(t, New(open), "Idempotency-Key", "k1")
	if got, want := rec2.last().MsgID, ids.FromName("people", "mary", "httpapi.addPerson", "k1"); got != want {
		t.Fatalf("msgId without authentication %s, want %s", got, want)
	}
}

// ownedReader owns no key: every read is forwarded to the owner its
// Ownership names.
type ownedReader struct{ Ownership }

func (ownedReader) Get(string) (person, error) { return person{}, eskafka.ErrNotOwner }
func (ownedReader) List(string, int) ([]person, []string, bool, error) {
	return nil, nil, false, nil
}

// ownedBy says every partition is owned by one URL.
type ownedBy string

func (o ownedBy) Owner(string) string { return string(o) }
func (o ownedBy) Owners() map[int32]string {
	return map[int32]string{0: string(o), 1: string(o), 2: string(o)}
}

var testSecret = []byte("a cluster secret for the tests!!")

// A request that claims to be forwarded (X-Catalog-Forwarded) from
// outside is refused when the instances share a secret: it would get a
// partial list, or a read without a token. One forwarded by an instance
// with the secret passes, reads included with AUTH_READS.
func TestSpoofedForwardingHeader(t *testing.T) {
	self := "http://b.example:9081"
	cfg, _ := accessConfig(Access{Authenticator: testTokens, Reads: true})
	cfg.Peers = &Peers{Self: self, Secret: testSecret}
	h := New(cfg)
	forwarder := &Peers{Self: "http://a.example:9081", Secret: testSecret}
	signed := func(method, path string, p *Peers) *http.Request {
		r := httptest.NewRequest(method, path, nil)
		p.prepare(r, self)
		return r
	}
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	spoofed := httptest.NewRequest("GET", "/people", nil)
	spoofed.Header.Set(ForwardedHeader, "http://a.example:9081")
	if w := serve(spoofed); w.Code != 400 || !strings.Contains(w.Body.String(), "it has no proof") || !strings.Contains(w.Body.String(), `"field":"X-Catalog-Forwarded"`) {
		t.Fatalf("spoofed header: %d %s", w.Code, w.Body.String())
	}
	if w := serve(signed("GET", "/people?local=true", forwarder)); w.Code != 200 {
		t.Fatalf("forwarded with a proof: %d %s", w.Code, w.Body.String())
	}

	replayed := signed("GET", "/people/jane", forwarder)
	replayed.URL.Path, replayed.RequestURI = "/people/mary", "/people/mary"
	other := &Peers{Self: "http://a.example:9081", Secret: []byte("another cluster's secret, not ours")}
	late := &Peers{Self: "http://a.example:9081", Secret: testSecret, Now: func() time.Time { return time.Now().Add(-2 * ProofWindow) }}
	toOther := httptest.NewRequest("GET", "/people", nil)
	forwarder.prepare(toOther, "http://c.example:9081")
	for name, c := range map[string]struct {
		r    *http.Request
		want string
	}{
		"proof for another path":     {replayed, "does not verify"},
		"proof of another secret":    {signed("GET", "/people", other), "does not verify"},
		"proof too old":              {signed("GET", "/people", late), "away from this instance's clock"},
		"proof for another instance": {toOther, "does not verify"},
	} {
		if w := serve(c.r); w.Code != 400 || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("%s: %d %s", name, w.Code, w.Body.String())
		}
	}
	// A proof vouches for a read, never for a write.
	post := signed("POST", "/people", forwarder)
	post.Body = io.NopCloser(strings.NewReader(createJane))
	post.Header.Set("Content-Type", "application/json")
	if w := serve(post); w.Code != 401 {
		t.Fatalf("forwarded write without a token: %d %s", w.Code, w.Body.String())
	}

	// Without a secret the header is taken at its word, as before.
	cfg2, _ := accessConfig(Access{})
	cfg2.Peers = &Peers{Self: self}
	spoofed = httptest.NewRequest("GET", "/people", nil)
	spoofed.Header.Set(ForwardedHeader, "http://a.example:9081")
	w := httptest.NewRecorder()
	New(cfg2).ServeHTTP(w, spoofed)
	if w.Code != 200 {
		t.Fatalf("forwarding header without a secret: %d %s", w.Code, w.Body.String())
	}
}

// A read of a key owned elsewhere goes to the owner with a proof the owner
// checks, and never to a URL that is not an http(s) origin.
func TestForwardCarriesProof(t *testing.T) {
	var owner *httptest.Server
	var seen []string
	var mu sync.Mutex
	owner = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		check := &Peers{Self: owner.URL, Secret: testSecret}
		mu.Lock()
		seen = append(seen, r.URL.RequestURI())
		mu.Unlock()
		if err := check.verify(r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, person{ID: "jane", Name: "Jane Austen", Version: 1})
	}))
	defer owner.Close()
	for _, c := range []struct {
		owner  string
		status int
	}{
		{owner.URL, 200},
		{owner.URL + "/evil", 503},
		{"file:///etc/passwd", 503},
		{"http://user@" + strings.TrimPrefix(owner.URL, "http://"), 503},
	} {
		cfg, _ := accessConfig(Access{})
		cfg.Peers = &Peers{Self: "http://self.example:9081", Secret: testSecret}
		peopleIn(cfg).Reader, cfg.Partitions = ownedReader{ownedBy(c.owner)}, 3
		w := (call{"GET", "/people/jane", "", ""}).do(t, New(cfg))
		if w.Code != c.status {
			t.Errorf("owner %q: %d %s", c.owner, w.Code, w.Body.String())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "/people/jane" {
		t.Fatalf("the owner was asked %q, want /people/jane once", seen)
	}
}

// An owner that answers with a redirect is not followed, nor is its
// redirect passed on.
func TestForwardFollowsNoRedirect(t *testing.T) {
	var hits sync.Map
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Store(r.URL.Path, true) }))
	defer elsewhere.Close()
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/stolen", http.StatusFound)
	}))
	defer owner.Close()
	cfg, _ := accessConfig(Access{})
	cfg.Peers = &Peers{Self: "http://self.example:9081", Secret: testSecret, Client: &http.Client{}}
	peopleIn(cfg).Reader, cfg.Partitions = ownedReader{ownedBy(owner.URL)}, 3
	w := (call{"GET", "/people/jane", "", ""}).do(t, New(cfg))
	if w.Code != http.StatusBadGateway || w.Header().Get("Location") != "" {
		t.Fatalf("redirecting owner: %d %v %s", w.Code, w.Header(), w.Body.String())
	}
	if _, ok := hits.Load("/stolen"); ok {
		t.Fatal("the redirect was followed")
	}
	if cfg.Peers.Client.CheckRedirect != nil {
		t.Fatal("the configured client was changed")
	}
}

// With ADMIN_ADDR the operator endpoints leave the API's listener for
// their own, where the same policy holds.
func TestAdminListener(t *testing.T) {
	cfg, _ := accessConfig(Access{Authenticator: testTokens})
	cfg.AdminListener = true
	api, admin := New(cfg), NewAdmin(cfg)
	for _, path := range []string{"/metrics", "/metadata"} {
		if w := (call{"GET", path, "a", ""}).do(t, api); w.Code != 404 {
			t.Errorf("API %s: %d, want 404", path, w.Code)
		}
		if w := (call{"GET", path, "a", ""}).do(t, admin); w.Code != 200 {
			t.Errorf("admin %s: %d %s", path, w.Code, w.Body.String())
		}
		if w := (call{"GET", path, "w", ""}).do(t, admin); w.Code != 403 {
			t.Errorf("admin %s with a writer token: %d", path, w.Code)
		}
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/people": 404, "/": 404} {
		if w := (call{"GET", path, "a", ""}).do(t, admin); w.Code != want {
			t.Errorf("admin %s: %d, want %d", path, w.Code, want)
		}
	}
	if w := (call{"GET", "/people", "", ""}).do(t, api); w.Code != 200 {
		t.Errorf("API /people: %d", w.Code)
	}
}
