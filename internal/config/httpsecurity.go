package config

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/bookscatalog/catalog/settingfile"
)

// HTTPSecurity is who may use the HTTP API, how it is served, and how
// instances trust each other (docs/security.md).
type HTTPSecurity struct {
	// Auth is "none" when AUTH=none says to serve without authentication
	// on purpose; else "". Without authentication configured and without
	// AUTH=none, the API listens on a loopback address only.
	Auth string
	// AuthIssuer and AuthAudience turn on OpenID Connect: bearer tokens
	// are JWTs of that issuer for that audience.
	AuthIssuer   string
	AuthAudience string
	// AuthRolesClaim names the token claim that holds the roles.
	AuthRolesClaim string
	// AuthTokensFile lists hashed tokens with a role and a subject each.
	AuthTokensFile string
	// AuthReads makes reads need a token with the reader role too.
	AuthReads bool
	// AdminAddr, when set, serves the operator endpoints (/metrics,
	// /metadata) on their own listener instead of HTTP_ADDR.
	AdminAddr string
	// ClusterSecret proves instances to each other: their advertised
	// URLs in the consumer groups and the reads they forward.
	ClusterSecret []byte
	// TLSCertFile and TLSKeyFile serve the API over HTTPS.
	TLSCertFile string
	TLSKeyFile  string
	// PeerCAFile holds the CA certificates trusted when forwarding to
	// other instances over HTTPS; empty: the system's.
	PeerCAFile string
}

// AuthEnabled reports whether callers authenticate (a token file or an
// identity provider is configured).
func (s HTTPSecurity) AuthEnabled() bool { return s.AuthTokensFile != "" || s.AuthIssuer != "" }

// TLS reports whether the API is served over HTTPS.
func (s HTTPSecurity) TLS() bool { return s.TLSCertFile != "" }

// minClusterSecret is the shortest cluster secret accepted, in bytes.
const minClusterSecret = 16

// httpSecurityFlags defines the flags of HTTPSecurity on fs, with env's
// values as defaults; the function it returns validates them into c once
// fs is parsed (after the rest of c, whose HTTP_ADDR and ADVERTISED_URL it
// checks against them).
func httpSecurityFlags(fs *flag.FlagSet, env func(k, def string) string) func(c *Config) error {
	authMode := fs.String("auth", env("AUTH", ""), "none: serve without authentication on purpose, even on a non-loopback HTTP_ADDR (AUTH)")
	issuer := fs.String("auth-issuer", env("AUTH_ISSUER", ""), "OpenID Connect issuer URL whose JWTs authenticate callers (AUTH_ISSUER)")
	audience := fs.String("auth-audience", env("AUTH_AUDIENCE", ""), "audience the JWTs must be issued for; required with AUTH_ISSUER (AUTH_AUDIENCE)")
	rolesClaim := fs.String("auth-roles-claim", env("AUTH_ROLES_CLAIM", "roles"), "JWT claim holding the roles reader, writer, admin; dots descend into objects (AUTH_ROLES_CLAIM)")
	tokensFile := fs.String("auth-tokens-file", env("AUTH_TOKENS_FILE", ""), "file of SHA-256-hashed bearer tokens, one \"HASH ROLE SUBJECT\" a line (AUTH_TOKENS_FILE)")
	reads := fs.String("auth-reads", env("AUTH_READS", "false"), "reads need a token with the reader role too (AUTH_READS)")
	adminAddr := fs.String("admin-addr", env("ADMIN_ADDR", ""), "separate listen address of /metrics and /metadata; default: HTTP_ADDR (ADMIN_ADDR)")
	secret := fs.String("cluster-secret", env("CLUSTER_SECRET", ""), "secret shared by the instances, proving their URLs and forwarded reads; prefer CLUSTER_SECRET_FILE (CLUSTER_SECRET)")
	secretFile := fs.String("cluster-secret-file", env("CLUSTER_SECRET_FILE", ""), "file holding CLUSTER_SECRET (CLUSTER_SECRET_FILE)")
	certFile := fs.String("tls-cert-file", env("TLS_CERT_FILE", ""), "PEM certificate (chain) to serve the API over HTTPS (TLS_CERT_FILE)")
	keyFile := fs.String("tls-key-file", env("TLS_KEY_FILE", ""), "PEM private key of TLS_CERT_FILE (TLS_KEY_FILE)")
	peerCA := fs.String("peer-ca-file", env("PEER_CA_FILE", ""), "PEM CA certificates trusted when forwarding to other instances over HTTPS; default: the system's (PEER_CA_FILE)")
	return func(c *Config) error {
		s := HTTPSecurity{
			AuthIssuer: *issuer, AuthAudience: *audience, AuthRolesClaim: *rolesClaim, AuthTokensFile: *tokensFile,
			AdminAddr: *adminAddr, TLSCertFile: *certFile, TLSKeyFile: *keyFile, PeerCAFile: *peerCA,
		}
		switch strings.ToLower(*authMode) {
		case "":
		case "none":
			s.Auth = "none"
			if s.AuthEnabled() {
				return fmt.Errorf("AUTH: none, but AUTH_TOKENS_FILE or AUTH_ISSUER is set: choose one")
			}
		default:
			return fmt.Errorf("AUTH: %q must be empty or none (authentication is on when AUTH_TOKENS_FILE or AUTH_ISSUER is set)", *authMode)
		}
		if s.AuthIssuer != "" {
			if u, err := url.Parse(s.AuthIssuer); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
				return fmt.Errorf("AUTH_ISSUER: %q must be an https URL (http only on a loopback host)", s.AuthIssuer)
			}
			if s.AuthAudience == "" {
				return fmt.Errorf("AUTH_AUDIENCE: required with AUTH_ISSUER (the audience tokens for this service are issued for), or tokens for any application of the issuer would pass")
			}
		} else if s.AuthAudience != "" {
			return fmt.Errorf("AUTH_AUDIENCE: set, but AUTH_ISSUER is not")
		}
		if strings.TrimSpace(s.AuthRolesClaim) == "" {
			return fmt.Errorf("AUTH_ROLES_CLAIM: must not be empty")
		}
		var err error
		if s.AuthReads, err = strconv.ParseBool(*reads); err != nil {
			return fmt.Errorf("AUTH_READS: %q must be true or false", *reads)
		}
		if s.AuthReads && !s.AuthEnabled() {
			return fmt.Errorf("AUTH_READS: true, but no authentication is configured (AUTH_TOKENS_FILE or AUTH_ISSUER)")
		}
		if s.AdminAddr != "" {
			if _, _, err := net.SplitHostPort(s.AdminAddr); err != nil {
				return fmt.Errorf("ADMIN_ADDR: %q is not host:port", s.AdminAddr)
			}
			if s.AdminAddr == c.HTTPAddr {
				return fmt.Errorf("ADMIN_ADDR: %q is HTTP_ADDR; leave it empty to serve the operator endpoints there", s.AdminAddr)
			}
		}
		if s.ClusterSecret, err = readSecret(*secret, *secretFile); err != nil {
			return err
		}
		if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
			return fmt.Errorf("TLS_CERT_FILE and TLS_KEY_FILE: set both to serve HTTPS, or neither")
		}
		if !s.AuthEnabled() && s.Auth != "none" {
			for _, l := range []struct{ name, addr string }{{"HTTP_ADDR", c.HTTPAddr}, {"ADMIN_ADDR", s.AdminAddr}} {
				if l.addr != "" && !isLoopbackAddr(l.addr) {
					return fmt.Errorf("%s: %s is reachable from other machines, and no authentication is configured: anyone who reaches it could change the catalog. "+
						"Set AUTH_TOKENS_FILE (make a token with `catalog tokens new writer NAME >> tokens`) or AUTH_ISSUER and AUTH_AUDIENCE (OpenID Connect); "+
						"or listen on localhost; or set AUTH=none to serve without authentication on purpose (docs/security.md)", l.name, l.addr)
				}
			}
		}
		if err := checkAdvertisedURL(c, s.TLS()); err != nil {
			return err
		}
		c.HTTPSecurity = s
		return nil
	}
}

// checkAdvertisedURL makes ADVERTISED_URL an http(s) origin (other
// instances forward to nothing else), https when the API is: the default
// http://HTTP_ADDR becomes https://HTTP_ADDR.
func checkAdvertisedURL(c *Config, tls bool) error {
	byDefault := c.AdvertisedURL == "http://"+c.HTTPAddr
	u, err := url.Parse(c.AdvertisedURL)
	if err == nil && u.Hostname() == "" && byDefault {
		// HTTP_ADDR ":9081" listens everywhere; as a URL it means this
		// machine, and only a URL with a host is ever forwarded to.
		_, port, _ := net.SplitHostPort(c.HTTPAddr)
		c.AdvertisedURL = "http://" + net.JoinHostPort("localhost", port)
		u, err = url.Parse(c.AdvertisedURL)
	}
	if err != nil || u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Hostname() == "" {
		return fmt.Errorf("ADVERTISED_URL: %q must be an http(s) origin: scheme, host and port, no path", c.AdvertisedURL)
	}
	if tls && u.Scheme == "http" {
		if !byDefault {
			return fmt.Errorf("ADVERTISED_URL: %q is http, but TLS_CERT_FILE makes the API https", c.AdvertisedURL)
		}
		c.AdvertisedURL = "https://" + strings.TrimPrefix(c.AdvertisedURL, "http://")
	}
	return nil
}

// readSecret returns the cluster secret, given inline or in a file (a
// final newline dropped).
func readSecret(inline, file string) ([]byte, error) {
	if inline != "" && file != "" {
		return nil, fmt.Errorf("CLUSTER_SECRET and CLUSTER_SECRET_FILE: set one, not both")
	}
	s := []byte(inline)
	if file != "" {
		b, err := settingfile.Read("CLUSTER_SECRET_FILE", file)
		if err != nil {
			return nil, err
		}
		s = []byte(strings.TrimRight(string(b), "\r\n"))
		if len(s) == 0 {
			return nil, fmt.Errorf("CLUSTER_SECRET_FILE: %s is empty", file)
		}
	}
	if len(s) > 0 && len(s) < minClusterSecret {
		return nil, fmt.Errorf("CLUSTER_SECRET: %d bytes, fewer than %d; make one with `openssl rand -hex 32`", len(s), minClusterSecret)
	}
	if len(s) == 0 {
		return nil, nil
	}
	return s, nil
}

// isLoopbackAddr reports whether a listen address (host:port) listens on
// a loopback interface only: localhost or a loopback IP. An empty host,
// 0.0.0.0, :: or any other name listens where others can reach it.
func isLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && isLoopbackHost(host)
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.IsLoopback()
}
