package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bookscatalog/catalog/auth"
)

// issuer is a local OpenID provider: a discovery document, a key set, and
// keys to sign tokens with in the test.
type issuer struct {
	t   *testing.T
	srv *httptest.Server
	URL string

	mu   sync.Mutex
	keys map[string]any // kid -> private key
	// published are the kids the key set lists.
	published []string
	down      bool
	// claimIssuer, when set, is the issuer the discovery document names.
	claimIssuer string

	jwksHits atomic.Int32
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	is := &issuer{t: t, keys: map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		down, name := is.down, is.claimIssuer
		is.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if name == "" {
			name = is.URL
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": name, "jwks_uri": is.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		if is.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var set jose.JSONWebKeySet
		for _, kid := range is.published {
			k := jose.JSONWebKey{Key: is.keys[kid], KeyID: kid, Use: "sig"}
			set.Keys = append(set.Keys, k.Public())
		}
		// A symmetric key in the set must never be used.
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hmac", Algorithm: "HS256"})
		_ = json.NewEncoder(w).Encode(set)
	})
	is.srv = httptest.NewServer(mux)
	is.URL = is.srv.URL
	t.Cleanup(is.srv.Close)
	is.addKey("k1", true)
	return is
}

// addKey makes a key; published puts it in the key set.
func (is *issuer) addKey(kid string, published bool) {
	is.t.Helper()
	var key any
	if strings.HasPrefix(kid, "ec") {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			is.t.Fatal(err)
		}
		key = k
	} else {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			is.t.Fatal(err)
		}
		key = k
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys[kid] = key
	if published {
		is.published = append(is.published, kid)
	}
}

// token signs claims with key kid.
func (is *issuer) token(kid string, claims map[string]any) string {
	is.t.Helper()
	is.mu.Lock()
	key := is.keys[kid]
	is.mu.Unlock()
	alg := jose.RS256
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = jose.ES256
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		is.t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		is.t.Fatal(err)
	}
	return s
}

var testNow = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)

// claims returns good claims for is, with over applied.
func (is *issuer) claims(over map[string]any) map[string]any {
	c := map[string]any{
		"iss":   is.URL,
		"aud":   []string{"catalog", "other"},
		"sub":   "alice",
		"exp":   testNow.Add(time.Hour).Unix(),
		"iat":   testNow.Add(-time.Minute).Unix(),
		"roles": []string{"writer", "offline_access"},
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func newOIDC(t *testing.T, is *issuer, adjust ...func(*auth.OIDCConfig)) *auth.OIDC {
	t.Helper()
	cfg := auth.OIDCConfig{Issuer: is.URL, Audience: "catalog", Now: func() time.Time { return testNow }}
	for _, a := range adjust {
		a(&cfg)
	}
	o, err := auth.NewOIDC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestOIDCAcceptsAGoodToken(t *testing.T) {
	is := newIssuer(t)
	is.addKey("ec1", true)
	o := newOIDC(t, is)
	ctx := context.Background()
	if err := o.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{"k1", "ec1"} {
		p, err := o.Authenticate(ctx, is.token(kid, is.claims(nil)))
		if err != nil {
			t.Fatalf("%s: %v", kid, err)
		}
		if p.Subject != "alice" || !p.Has(auth.RoleWriter) || p.Has(auth.RoleAdmin) || len(p.Roles) != 1 {
			t.Fatalf("%s: principal %+v", kid, p)
		}
	}
	if hits := is.jwksHits.Load(); hits != 1 {
		t.Fatalf("the key set was fetched %d times, want once (cached)", hits)
	}
}

func TestOIDCRefusesBadTokens(t *testing.T) {
	is := newIssuer(t)
	is.addKey("unpublished", false)
	o := newOIDC(t, is)
	ctx := context.Background()
	hs256 := func() string {
		// Signed with the symmetric key the key set lists: the classic
		// confusion of a public key set entry with an HMAC secret.
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, (&jose.SignerOptions{}).WithHeader("kid", "hmac"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := jwt.Signed(signer).Claims(is.claims(nil)).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	good := is.token("k1", is.claims(nil))
	parts := strings.Split(good, ".")
	for name, c := range map[string]struct {
		token string
		why   string
	}{
		"another audience":     {is.token("k1", is.claims(map[string]any{"aud": "billing"})), "audience"},
		"another issuer":       {is.token("k1", is.claims(map[string]any{"iss": "https://evil.example"})), "issuer"},
		"expired":              {is.token("k1", is.claims(map[string]any{"exp": testNow.Add(-2 * time.Minute).Unix()})), "expired"},
		"not yet valid":        {is.token("k1", is.claims(map[string]any{"nbf": testNow.Add(10 * time.Minute).Unix()})), "not valid yet"},
		"no expiry":            {is.token("k1", is.claims(map[string]any{"exp": nil})), "no expiry"},
		"no subject":           {is.token("k1", is.claims(map[string]any{"sub": nil})), "empty subject"},
		"subject with newline": {is.token("k1", is.claims(map[string]any{"sub": "a\nb"})), "control character"},
		"unpublished key":      {is.token("unpublished", is.claims(nil)), "does not publish"},
		"HS256":                {hs256, "unexpected signature algorithm"},
		"alg none":             {`eyJhbGciOiJub25lIn0.` + parts[1] + `.`, "unexpected signature algorithm"},
		"tampered payload":     {parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2], ""},
		"not a JWT":            {"catalog_abc", "not a JWT"},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := o.Authenticate(ctx, c.token)
			if !errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrUnavailable) {
				t.Fatalf("got %+v, %v; want ErrInvalidToken", p, err)
			}
			if !strings.Contains(err.Error(), c.why) {
				t.Fatalf("err = %v, want it to say %q", err, c.why)
			}
		})
	}
}

// rotated returns an OIDC that has checked a token of key k1, and its
// issuer, which has since published k2 too; the clock, which now moves,
// is past MinRefreshGap.
func rotated(t *testing.T) (*auth.OIDC, *issuer, *time.Time) {
	t.Helper()
	is := newIssuer(t)
	now := testNow
	o := newOIDC(t, is, func(c *auth.OIDCConfig) { c.Now = func() time.Time { return now } })
	if _, err := o.Authenticate(context.Background(), is.token("k1", is.claims(nil))); err != nil {
		t.Fatal(err)
	}
	is.addKey("k2", true)
	now = now.Add(31 * time.Second)
	return o, is, &now
}

// A token signed with a key the cache does not hold yet (the provider
// rotated its keys) fetches the key set again; made-up key ids do not
// fetch it more than once per MinRefreshGap.
func TestOIDCKeyRotation(t *testing.T) {
	o, is, now := rotated(t)
	ctx := context.Background()
	if _, err := o.Authenticate(ctx, is.token("k2", is.claims(nil))); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
	if hits := is.jwksHits.Load(); hits != 2 {
		t.Fatalf("key set fetched %d times, want 2", hits)
	}
	// A flood of tokens naming unknown keys within the gap: no fetch.
	is.addKey("k3", false)
	for range 50 {
		if _, err := o.Authenticate(ctx, is.token("k3", is.claims(nil))); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("unknown key: %v", err)
		}
	}
	if hits := is.jwksHits.Load(); hits != 2 {
		t.Fatalf("key set fetched %d times after 50 tokens of an unknown key, want still 2", hits)
	}
	// Keys older than RefreshEvery are fetched again: a withdrawn key
	// stops being trusted.
	is.mu.Lock()
	is.published = []string{"k2"}
	is.mu.Unlock()
	*now = now.Add(time.Hour)
	_, _ = o.Authenticate(ctx, is.token("k2", is.claims(map[string]any{"exp": now.Add(time.Hour).Unix()})))
	if _, err := o.Authenticate(ctx, is.token("k1", is.claims(map[string]any{"exp": now.Add(time.Hour).Unix()}))); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("a withdrawn key still verifies: %v", err)
	}
}

// While the provider cannot be reached and no keys were ever fetched,
// tokens cannot be checked: ErrUnavailable (503), not invalid (401), and
// the provider is asked again only after MinRefreshGap.
func TestOIDCProviderDown(t *testing.T) {
	is := newIssuer(t)
	is.down = true
	now := testNow
	o := newOIDC(t, is, func(c *auth.OIDCConfig) { c.Now = func() time.Time { return now } })
	ctx := context.Background()
	if err := o.Warm(ctx); err == nil {
		t.Fatal("Warm with the provider down: no error")
	}
	tok := is.token("k1", is.claims(nil))
	if _, err := o.Authenticate(ctx, tok); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("provider down: %v, want ErrUnavailable", err)
	}
	is.mu.Lock()
	is.down = false
	is.mu.Unlock()
	if _, err := o.Authenticate(ctx, tok); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("within the gap after a failure: %v, want ErrUnavailable without asking", err)
	}
	now = now.Add(30 * time.Second)
	if _, err := o.Authenticate(ctx, tok); err != nil {
		t.Fatalf("provider back: %v", err)
	}
	// Junk is refused without asking the provider at all.
	hits := is.jwksHits.Load()
	is.mu.Lock()
	is.down = true
	is.mu.Unlock()
	if _, err := o.Authenticate(ctx, "a.b.c"); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("junk: %v", err)
	}
	if is.jwksHits.Load() != hits {
		t.Fatal("a malformed token made a fetch")
	}
}

func TestOIDCDiscoveryMustNameTheIssuer(t *testing.T) {
	is := newIssuer(t)
	is.claimIssuer = "https://other.example"
	o := newOIDC(t, is)
	if err := o.Warm(context.Background()); err == nil || !strings.Contains(err.Error(), "AUTH_ISSUER must be exactly") {
		t.Fatalf("Warm: %v", err)
	}
}

func TestOIDCRolesClaim(t *testing.T) {
	is := newIssuer(t)
	ctx := context.Background()
	for _, c := range []struct {
		claim  string
		claims map[string]any
		want   []auth.Role
	}{
		{"roles", map[string]any{"roles": []string{"admin", "writer", "admin"}}, []auth.Role{auth.RoleAdmin, auth.RoleWriter}},
		{"scope", map[string]any{"scope": "openid writer profile"}, []auth.Role{auth.RoleWriter}},
		{"realm_access.roles", map[string]any{"realm_access": map[string]any{"roles": []string{"reader"}}}, []auth.Role{auth.RoleReader}},
		{"https://catalog.example/roles", map[string]any{"https://catalog.example/roles": []string{"admin"}}, []auth.Role{auth.RoleAdmin}},
		{"roles", map[string]any{"roles": nil}, nil},
		{"roles", map[string]any{"roles": 42}, nil},
		{"a.b", map[string]any{"a": "not an object"}, nil},
	} {
		o := newOIDC(t, is, func(cfg *auth.OIDCConfig) { cfg.RolesClaim = c.claim })
		p, err := o.Authenticate(ctx, is.token("k1", is.claims(c.claims)))
		if err != nil {
			t.Fatalf("%s: %v", c.claim, err)
		}
		if len(p.Roles) != len(c.want) {
			t.Fatalf("%s %v: roles %v, want %v", c.claim, c.claims, p.Roles, c.want)
		}
		for i := range c.want {
			if p.Roles[i] != c.want[i] {
				t.Fatalf("%s: roles %v, want %v", c.claim, p.Roles, c.want)
			}
		}
	}
}

func TestOIDCConfig(t *testing.T) {
	for _, c := range []struct {
		issuer, audience, err string
	}{
		{"http://idp.example", "catalog", "must be https"},
		{"https://idp.example?x=1", "catalog", "without query"},
		{"idp.example", "catalog", "not an https URL"},
		{"https://idp.example", "", "audience is required"},
		{"http://127.0.0.1:8080/realms/x", "catalog", ""},
		{"https://idp.example/", "catalog", ""},
	} {
		_, err := auth.NewOIDC(auth.OIDCConfig{Issuer: c.issuer, Audience: c.audience})
		if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("issuer %q audience %q: %v, want %q", c.issuer, c.audience, err, c.err)
		}
	}
}

// Chain: a token either authenticator accepts passes; one that cannot be
// checked by one of them is unavailable rather than invalid.
func TestChain(t *testing.T) {
	is := newIssuer(t)
	o := newOIDC(t, is)
	path := t.TempDir() + "/tokens"
	write(t, path, auth.HashToken("opaque")+" admin ops\n")
	tf, err := auth.LoadTokenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain := auth.Chain{tf, o}
	ctx := context.Background()
	if p, err := chain.Authenticate(ctx, "opaque"); err != nil || p.Subject != "ops" {
		t.Fatalf("file token: %+v, %v", p, err)
	}
	if p, err := chain.Authenticate(ctx, is.token("k1", is.claims(nil))); err != nil || p.Subject != "alice" {
		t.Fatalf("JWT: %+v, %v", p, err)
	}
	if _, err := chain.Authenticate(ctx, "nope"); !errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("unknown: %v", err)
	}
	down := newIssuer(t)
	down.down = true
	chain = auth.Chain{tf, newOIDC(t, down)}
	if _, err := chain.Authenticate(ctx, down.token("k1", down.claims(nil))); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("JWT with the provider down: %v", err)
	}
}
