package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/bookscatalog/catalog/auth"
)

// Found by review; each test failed before its fix.

// AUTH_ISSUER must be https "keys fetched over plain HTTP across a network
// could be anyone's", but a redirect from the https issuer to a plain-http,
// non-loopback host is followed: the keys then come over cleartext.
func TestJWKSRedirectToPlainHTTPIsRefused(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1) // "keys.example" over cleartext: an on-path attacker's answer
		k := jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k}})
	}))
	defer plain.Close()
	var iss *httptest.Server
	iss = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss.URL, "jwks_uri": iss.URL + "/keys"})
		case "/keys":
			http.Redirect(w, r, "http://keys.example/keys", http.StatusFound)
		}
	}))
	defer iss.Close()
	c := iss.Client()
	tr := c.Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "keys.example:") {
			addr = plain.Listener.Addr().String()
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	c.Transport = tr
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: iss.URL, Audience: "catalog", Client: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Warm(context.Background()); err == nil || plainHits.Load() > 0 {
		t.Fatalf("keys fetched over plain http from a non-loopback host (hits %d, err %v)", plainHits.Load(), err)
	}
}

// The provider rotated to k2 and its key set cannot be fetched right now:
// a valid k2 token was "invalid" (401, the page drops the token) rather
// than "cannot be checked now" (503, Retry-After) as for a provider down
// at start.
func TestRotatedKeyWhileTheProviderIsDownIsUnavailable(t *testing.T) {
	o, is, _ := rotated(t)
	is.mu.Lock()
	is.down = true
	is.mu.Unlock()
	_, err := o.Authenticate(context.Background(), is.token("k2", is.claims(nil)))
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("good token of a rotated key, provider failing: %v; want ErrUnavailable", err)
	}
}
