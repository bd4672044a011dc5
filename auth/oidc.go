package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// OIDCConfig configures an OIDC authenticator.
type OIDCConfig struct {
	// Issuer is the identity provider's issuer URL, exactly as its tokens
	// name it in "iss" (AUTH_ISSUER). Its discovery document is at
	// Issuer + "/.well-known/openid-configuration". It must be https,
	// unless its host is a loopback address.
	Issuer string
	// Audience must be one of a token's "aud" (AUTH_AUDIENCE): a token
	// issued for another application is refused.
	Audience string
	// RolesClaim names the claim that holds the caller's roles
	// (AUTH_ROLES_CLAIM, default "roles"): a list of strings or one
	// space-separated string. A name with dots that is not itself a
	// claim descends into objects, as in "realm_access.roles".
	RolesClaim string
	// Client fetches the discovery document and the keys (default: a
	// client with a 10 s timeout).
	Client *http.Client
	// RefreshEvery is how old the keys may grow before they are fetched
	// again (default 1 h), so that a key the provider withdrew stops
	// being trusted.
	RefreshEvery time.Duration
	// MinRefreshGap is the least time between two fetches that a token
	// signed with an unknown key, or a failed fetch, causes (default
	// 30 s): tokens with made-up key ids cannot make this service hammer
	// the provider.
	MinRefreshGap time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat (default 1 min).
	Leeway time.Duration
	// Now is the clock (tests).
	Now    func() time.Time
	Logger *slog.Logger
}

// OIDC authenticates JWT access tokens of an OpenID Connect provider: it
// finds the provider's keys by discovery, caches them, and checks each
// token's signature, issuer, audience and times. The subject is the token's
// "sub", the roles are read from RolesClaim.
//
// Keys are fetched at most once per MinRefreshGap when a token names a key
// the cache lacks (key rotation) or a fetch failed, and whenever they are
// older than RefreshEvery. While a refresh runs, other requests go on with
// the keys in hand; a failed refresh keeps them.
type OIDC struct {
	cfg OIDCConfig

	fetch sync.Mutex // one fetch at a time

	mu      sync.RWMutex // guards the fields below
	keys    []jose.JSONWebKey
	fetched time.Time // last successful fetch
	tried   time.Time // last attempt
	lastErr error
	jwksURI string
}

// signatureAlgorithms are the algorithms accepted: asymmetric only, so
// that a public key can never serve as an HMAC secret.
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// NewOIDC returns an authenticator for cfg's issuer. It fetches nothing
// yet: see Warm.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	if err := CheckIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.Audience == "" {
		return nil, errors.New("an audience is required: tokens issued for other applications would pass")
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "roles"
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = time.Hour
	}
	if cfg.MinRefreshGap <= 0 {
		cfg.MinRefreshGap = 30 * time.Second
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &OIDC{cfg: cfg}, nil
}

// CheckIssuer returns an error unless issuer is an https URL, or an http
// one on a loopback host (a provider on the same machine, or a test): keys
// fetched over plain HTTP across a network could be anyone's.
func CheckIssuer(issuer string) error {
	return checkFetchURL("issuer", issuer)
}

func checkFetchURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s %q is not an https URL without query", what, s)
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return fmt.Errorf("%s %q must be https (http only on a loopback host)", what, s)
	}
	return nil
}

// checkRedirect is checkFetchURL's rule for where a fetch may be sent on:
// https, or http only on a loopback host.
func checkRedirect(u *url.URL) error {
	if u.Scheme == "https" || u.Scheme == "http" && loopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("redirected to %q: only https (http only on a loopback host)", clipField(u.Redacted()))
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// Warm fetches the discovery document and the keys now, so that a
// misconfigured issuer shows at start rather than at the first write.
func (o *OIDC) Warm(ctx context.Context) error {
	o.fetch.Lock()
	defer o.fetch.Unlock()
	return o.refresh(ctx)
}

// Authenticate implements Authenticator.
func (o *OIDC) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: not a JWT", ErrInvalidToken)
	}
	tok, err := jwt.ParseSigned(token, signatureAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: %d signatures, want one", ErrInvalidToken, len(tok.Headers))
	}
	h := tok.Headers[0]
	keys, err := o.keysFor(ctx, h.KeyID, h.Algorithm)
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var all map[string]any
	verified := false
	for _, k := range keys {
		if err := tok.Claims(k.Key, &std, &all); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, fmt.Errorf("%w: bad signature", ErrInvalidToken)
	}
	if std.Expiry == nil {
		return nil, fmt.Errorf("%w: no expiry (exp)", ErrInvalidToken)
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: o.cfg.Issuer, AnyAudience: jwt.Audience{o.cfg.Audience}, Time: o.cfg.Now()}, o.cfg.Leeway)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if err := CheckSubject(std.Subject); err != nil {
		return nil, fmt.Errorf("%w: sub: %v", ErrInvalidToken, err)
	}
	return &Principal{Subject: std.Subject, Roles: rolesOf(all, o.cfg.RolesClaim)}, nil
}

// keysFor returns the keys that may have signed a token with key id kid
// and algorithm alg, fetching them when the cache lacks them or is old.
func (o *OIDC) keysFor(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	now := o.cfg.Now()
	o.mu.RLock()
	keys, fetched, tried := o.keys, o.fetched, o.tried
	o.mu.RUnlock()
	due := now.Sub(tried) >= o.cfg.MinRefreshGap
	// The fetch serves every request waiting on it, and counts as the
	// attempt for MinRefreshGap: it must not end with the request that
	// happened to start it (a client that hangs up would otherwise make
	// every token fail until the next attempt). fetchKeys bounds it.
	ctx = context.WithoutCancel(ctx)
	switch {
	case len(matching(keys, kid, alg)) == 0 && due:
		// No keys yet, or a key we do not know (the provider rotated
		// its keys): wait for a fetch, unless another request fetched
		// while this one waited.
		o.fetch.Lock()
		o.mu.RLock()
		again := o.tried.Equal(tried)
		o.mu.RUnlock()
		if again {
			if err := o.refresh(ctx); err != nil {
				o.cfg.Logger.Warn("identity provider keys", "issuer", o.cfg.Issuer, "err", err)
			}
		}
		o.fetch.Unlock()
	case keys != nil && now.Sub(fetched) >= o.cfg.RefreshEvery && due && o.fetch.TryLock():
		// Old keys: this request fetches them again, the others go on
		// with the old ones meanwhile.
		if err := o.refresh(ctx); err != nil {
			o.cfg.Logger.Warn("identity provider keys: keeping the keys fetched before", "issuer", o.cfg.Issuer, "err", err)
		}
		o.fetch.Unlock()
	}
	o.mu.RLock()
	keys, lastErr := o.keys, o.lastErr
	o.mu.RUnlock()
	if keys == nil {
		return nil, fmt.Errorf("%w: the identity provider's keys could not be fetched: %v", ErrUnavailable, lastErr)
	}
	match := matching(keys, kid, alg)
	if len(match) == 0 && lastErr != nil {
		// The provider may publish the key by now (it rotated its
		// keys), but the last fetch failed: the token was not checked,
		// so it is not invalid; the client is to try again.
		return nil, fmt.Errorf("%w: the identity provider's keys could not be fetched again, and the token is signed with a key not fetched before (kid %q): %v", ErrUnavailable, clipField(kid), lastErr)
	}
	if len(match) == 0 {
		return nil, fmt.Errorf("%w: signed with a key the identity provider does not publish (kid %q)", ErrInvalidToken, clipField(kid))
	}
	return match, nil
}

// matching returns the keys of keys with key id kid (any, when kid is
// empty) usable with alg.
func matching(keys []jose.JSONWebKey, kid, alg string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if (kid == "" || k.KeyID == kid) && (k.Algorithm == "" || k.Algorithm == alg) {
			out = append(out, k)
		}
	}
	return out
}

// refresh fetches the discovery document (until it succeeds once) and the
// keys; callers hold o.fetch.
func (o *OIDC) refresh(ctx context.Context) error {
	o.mu.Lock()
	o.tried = o.cfg.Now()
	jwksURI := o.jwksURI
	o.mu.Unlock()
	keys, jwksURI, err := o.fetchKeys(ctx, jwksURI)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lastErr = err
	if err != nil {
		return err
	}
	o.keys, o.jwksURI, o.fetched = keys, jwksURI, o.cfg.Now()
	return nil
}

// maxDocumentBytes bounds the discovery document and the key set.
const maxDocumentBytes = 1 << 20

func (o *OIDC) fetchKeys(ctx context.Context, jwksURI string) ([]jose.JSONWebKey, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if jwksURI == "" {
		var disc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		wellKnown := strings.TrimSuffix(o.cfg.Issuer, "/") + "/.well-known/openid-configuration"
		if err := o.getJSON(ctx, wellKnown, &disc); err != nil {
			return nil, "", fmt.Errorf("discovery: %w", err)
		}
		if disc.Issuer != o.cfg.Issuer {
			return nil, "", fmt.Errorf("discovery: the provider names itself %q, not %q (AUTH_ISSUER must be exactly its issuer)", clipField(disc.Issuer), o.cfg.Issuer)
		}
		if err := checkFetchURL("jwks_uri", disc.JWKSURI); err != nil {
			return nil, "", fmt.Errorf("discovery: %w", err)
		}
		jwksURI = disc.JWKSURI
	}
	var set jose.JSONWebKeySet
	if err := o.getJSON(ctx, jwksURI, &set); err != nil {
		return nil, "", fmt.Errorf("keys: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, k := range set.Keys {
		// Public signing keys only: a symmetric key in a public key
		// set would let anyone who read it sign tokens.
		if k.Valid() && k.IsPublic() && (k.Use == "" || k.Use == "sig") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, "", fmt.Errorf("keys: %s publishes no public signing key", jwksURI)
	}
	return keys, jwksURI, nil
}

func (o *OIDC) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	// A redirect is checked as the URL it replaces: an https key
	// endpoint that redirects to plain http would hand the signing keys
	// to whoever is on the path.
	c := *o.cfg.Client
	then := c.CheckRedirect
	c.CheckRedirect = func(next *http.Request, via []*http.Request) error {
		if err := checkRedirect(next.URL); err != nil {
			return err
		}
		if then != nil {
			return then(next, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(b) > maxDocumentBytes {
		return fmt.Errorf("GET %s: more than %d bytes", u, maxDocumentBytes)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// rolesOf reads the known roles from the claim named name: a list of
// strings or one space-separated string.
func rolesOf(claims map[string]any, name string) []Role {
	v, ok := claims[name]
	if !ok {
		// A dotted path into nested objects ("realm_access.roles").
		var cur any = claims
		for _, part := range strings.Split(name, ".") {
			m, isMap := cur.(map[string]any)
			if !isMap {
				return nil
			}
			cur = m[part]
		}
		v = cur
	}
	var names []string
	switch v := v.(type) {
	case string:
		names = strings.Fields(v)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				names = append(names, s)
			}
		}
	}
	var roles []Role
	for _, n := range names {
		if r, err := ParseRole(n); err == nil && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles
}
