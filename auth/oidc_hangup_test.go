package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/auth"
)

// A key fetch that one request causes serves every request after it, so
// it must not end when that request does. It used to run on the
// triggering request's context: a client that sent a token naming an
// unknown key (any made-up kid) and hung up at once cancelled the fetch,
// which still counted as the attempt of the next MinRefreshGap. Repeated
// every 30 s, that kept the service from ever learning the provider's
// new keys (tokens of a rotated key: 401 for everyone), or, when the
// provider was down at start, kept every write at 503.
func TestKeyFetchOutlivesTheRequestThatCausedIt(t *testing.T) {
	hungUp, cancel := context.WithCancel(context.Background())
	cancel()

	t.Run("key rotation", func(t *testing.T) {
		is := newIssuer(t)
		now := testNow
		o := newOIDC(t, is, func(c *auth.OIDCConfig) { c.Now = func() time.Time { return now } })
		if err := o.Warm(context.Background()); err != nil {
			t.Fatal(err)
		}
		is.addKey("k2", true)       // the provider rotates its keys
		is.addKey("made-up", false) // the attacker's key, never published
		now = now.Add(31 * time.Second)
		_, _ = o.Authenticate(hungUp, is.token("made-up", is.claims(nil)))
		if _, err := o.Authenticate(context.Background(), is.token("k2", is.claims(nil))); err != nil {
			t.Fatalf("a good token of the provider's new key, after another client hung up on a fetch: %v", err)
		}
	})

	t.Run("provider down at start", func(t *testing.T) {
		is := newIssuer(t)
		is.mu.Lock()
		is.down = true
		is.mu.Unlock()
		now := testNow
		o := newOIDC(t, is, func(c *auth.OIDCConfig) { c.Now = func() time.Time { return now } })
		if err := o.Warm(context.Background()); err == nil {
			t.Fatal("Warm with the provider down: no error")
		}
		is.mu.Lock()
		is.down = false
		is.mu.Unlock()
		now = now.Add(31 * time.Second)
		_, _ = o.Authenticate(hungUp, "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.e30.AAAA")
		if _, err := o.Authenticate(context.Background(), is.token("k1", is.claims(nil))); err != nil {
			t.Fatalf("a good token once the provider is back, after another client hung up on the fetch: %v", err)
		}
	})
}
