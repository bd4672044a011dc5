package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// DefaultAllowedHosts returns the hosts a request may name when
// ALLOWED_HOSTS is not set: localhost, 127.0.0.1, ::1, the host of httpAddr
// (HTTP_ADDR) and the host of advertisedURL (ADVERTISED_URL, which other
// instances use when they forward reads, so those pass).
//
// When httpAddr listens on every interface (an empty host, 0.0.0.0 or ::)
// it returns nil, no check: such an instance is reached under names and
// addresses it cannot know (every address of the machine, DNS names, a
// proxy's), and refusing them all by default would lock its users out.
// Such a deployment protects its web page against DNS rebinding by setting
// ALLOWED_HOSTS.
func DefaultAllowedHosts(httpAddr, advertisedURL string) []string {
	host, _, err := net.SplitHostPort(httpAddr)
	if err != nil {
		host = httpAddr
	}
	if host == "" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return nil
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	add := func(h string) {
		if h = normalHost(h); h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	add(host)
	if u, err := url.Parse(advertisedURL); err == nil {
		add(u.Hostname())
	}
	return hosts
}

// normalHost returns host as it is compared: lower case, without the
// brackets of an IPv6 literal and without a final dot.
func normalHost(host string) string {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// requestHost returns the host a request names, without its port.
func requestHost(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return normalHost(host)
}

// checkHost refuses (421) a request whose Host is not one of allowed
// (compared without port, case-insensitively; "*" allows any). A page
// served from a name an attacker controls that resolves to this service
// (DNS rebinding) would otherwise reach the API from a browser as if it
// were the service's own page. An empty list checks nothing.
//
// The liveness and readiness probes are exempt: they reveal nothing, and
// probes often name the instance by an address nobody lists.
func checkHost(allowed []string, next http.Handler) http.Handler {
	if len(allowed) == 0 {
		return next
	}
	set := make(map[string]bool, len(allowed))
	for _, h := range allowed {
		set[normalHost(strings.TrimSpace(h))] = true
	}
	if set["*"] {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := requestHost(r)
		if set[host] || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		p := problem(http.StatusMisdirectedRequest, "this service does not answer to host %s; to allow it, add it to ALLOWED_HOSTS (comma-separated host names or addresses, without port)", quoted(host))
		p.Field = "Host"
		writeProblem(w, p)
	})
}
