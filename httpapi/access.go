package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/bookscatalog/catalog/auth"
)

// Access is who may do what through the API (docs/security.md):
//
//   - writes (every method but GET and HEAD: the resources' POST, PUT and
//     DELETE and the command endpoints) need the writer role;
//   - operator endpoints (OperatorPaths: /metrics, /metadata) need the
//     admin role;
//   - reads need a token with the reader role (or more) only when Reads
//     is set;
//   - /healthz, /readyz and the web page itself (/ and its assets under
//     /ui/) are open: probes carry no token, and the page must load to
//     ask for one.
//
// With no Authenticator everything is open: the service then listens on a
// loopback address only, unless AUTH=none says otherwise (config).
type Access struct {
	// Authenticator checks bearer tokens; nil turns authentication off.
	Authenticator auth.Authenticator
	// Reads makes reads need a token too (AUTH_READS).
	Reads bool
	// Realm names the protection space in WWW-Authenticate (default
	// "catalog").
	Realm string
}

// OperatorPaths are the endpoints for operators: they need the admin role
// when authentication is on, and move to their own listener with
// ADMIN_ADDR (NewAdmin).
var OperatorPaths = []string{"/metrics", "/metadata"}

// isOperatorPath reports whether path is one of OperatorPaths.
func isOperatorPath(path string) bool { return slices.Contains(OperatorPaths, path) }

// openPath reports whether a request needs no token whatever the policy.
func openPath(r *http.Request) bool {
	if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
		return true
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	return read && (r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/ui/"))
}

// need returns the role a request needs, "" for none.
func (a Access) need(r *http.Request) auth.Role {
	switch {
	case openPath(r):
		return ""
	case isOperatorPath(r.URL.Path):
		return auth.RoleAdmin
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return auth.RoleWriter
	case a.Reads && !forwardedByPeer(r.Context()):
		// A read another instance forwarded with a valid proof was
		// authorised there: forwarded requests carry no credentials
		// (they would go to whatever URL the group names).
		return auth.RoleReader
	}
	return ""
}

// authorize applies a's policy before next: 401 without a good token, 403
// without the role, 503 when tokens cannot be checked now. The principal
// goes into the request's context (auth.FromContext), where writes find
// the subject to record.
func authorize(a Access, next http.Handler) http.Handler {
	if a.Authenticator == nil {
		return next
	}
	if a.Realm == "" {
		a.Realm = "catalog"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role := a.need(r)
		if role == "" {
			next.ServeHTTP(w, r)
			return
		}
		token, present := bearerToken(r)
		if token == "" {
			p := problem(http.StatusUnauthorized, "%s needs a bearer token (Authorization: Bearer <token>) with the %s role", what(r, role), role)
			p.Code = "token_required"
			challenge := ""
			if present {
				p.Detail = "the Authorization header must be \"Bearer <token>\"; " + p.Detail
				challenge = `error="invalid_request"`
			}
			a.challenge(w, challenge)
			writeProblem(w, p)
			return
		}
		principal, err := a.Authenticator.Authenticate(r.Context(), token)
		switch {
		case errors.Is(err, auth.ErrUnavailable):
			w.Header().Set("Retry-After", "5")
			p := problem(http.StatusServiceUnavailable, "the token cannot be checked right now (the identity provider's keys are unavailable); retry shortly")
			p.Code = "auth_unavailable"
			writeProblem(w, p)
			return
		case err != nil:
			p := problem(http.StatusUnauthorized, "the bearer token was refused: %s", clip(reason(err)))
			p.Code = "invalid_token"
			a.challenge(w, `error="invalid_token"`)
			writeProblem(w, p)
			return
		case !principal.Has(role):
			p := problem(http.StatusForbidden, "%s needs the %s role; %s has %s", what(r, role), role, quoted(principal.Subject), roleList(principal.Roles))
			p.Code = "insufficient_role"
			a.challenge(w, `error="insufficient_scope"`)
			writeProblem(w, p)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), principal)))
	})
}

// challenge sets WWW-Authenticate (RFC 6750 §3); params, when set, are
// constant strings (never request input).
func (a Access) challenge(w http.ResponseWriter, params string) {
	v := `Bearer realm="` + a.Realm + `"`
	if params != "" {
		v += ", " + params
	}
	w.Header().Set("WWW-Authenticate", v)
}

// bearerToken returns the token of an Authorization: Bearer header, and
// whether an Authorization header was sent at all.
func bearerToken(r *http.Request) (token string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(token), true
}

// what names what a request does, for a problem's detail.
func what(r *http.Request, role auth.Role) string {
	switch role {
	case auth.RoleAdmin:
		return quoted(r.URL.Path) + " (an operator endpoint)"
	case auth.RoleWriter:
		return "a write (" + r.Method + ")"
	}
	return "reading"
}

func roleList(roles []auth.Role) string {
	if len(roles) == 0 {
		return "no role"
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return "the role " + strings.Join(names, ", ")
}

// reason returns why a token was refused, without the wrapping sentinel.
func reason(err error) string {
	s := strings.ReplaceAll(err.Error(), auth.ErrInvalidToken.Error()+": ", "")
	return strings.ReplaceAll(s, "\n", "; ")
}

type forwardedKey struct{}

// forwardedByPeer reports whether the request came from another instance
// with a valid proof (checkForwarded).
func forwardedByPeer(ctx context.Context) bool {
	v, _ := ctx.Value(forwardedKey{}).(bool)
	return v
}
