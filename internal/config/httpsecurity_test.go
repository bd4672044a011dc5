package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func load(env map[string]string, args ...string) (Config, error) {
	return Load(args, func(k string) string { return env[k] })
}

// With nothing set, the laptop default: no authentication, on localhost.
func TestSecurityDefaults(t *testing.T) {
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthEnabled() || c.Auth != "" || c.AuthReads || c.AuthRolesClaim != "roles" || c.AdminAddr != "" ||
		c.ClusterSecret != nil || c.TLS() || c.AdvertisedURL != "http://localhost:9081" {
		t.Fatalf("defaults: %+v", c.HTTPSecurity)
	}
}

// Writes without authentication are served on loopback only: a
// non-loopback address without authentication refuses to start, saying
// how to configure it or to opt out.
func TestNoAuthOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"localhost:9081", "127.0.0.1:1", "[::1]:9081", "127.0.0.2:80", "LOCALHOST:9081"} {
		if _, err := load(map[string]string{"HTTP_ADDR": addr}); err != nil {
			t.Errorf("HTTP_ADDR %s without auth: %v", addr, err)
		}
	}
	for _, env := range []map[string]string{
		{"HTTP_ADDR": ":9081"},
		{"HTTP_ADDR": "0.0.0.0:9081"},
		{"HTTP_ADDR": "[::]:9081"},
		{"HTTP_ADDR": "10.1.2.3:9081"},
		{"HTTP_ADDR": "catalog.example.com:9081"},
		{"ADMIN_ADDR": "0.0.0.0:9090"},
	} {
		_, err := load(env)
		if err == nil {
			t.Errorf("%v without auth: started", env)
			continue
		}
		for _, want := range []string{"reachable from other machines", "AUTH_TOKENS_FILE", "AUTH_ISSUER", "AUTH=none", "docs/security.md"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v: %v\nwant it to mention %s", env, err, want)
			}
		}
	}
	// Opting out, or authenticating, lifts it.
	for _, env := range []map[string]string{
		{"HTTP_ADDR": "0.0.0.0:9081", "AUTH": "none"},
		{"HTTP_ADDR": "0.0.0.0:9081", "AUTH": "NONE", "ADMIN_ADDR": "0.0.0.0:9090"},
		{"HTTP_ADDR": "0.0.0.0:9081", "AUTH_TOKENS_FILE": "/etc/catalog/tokens"},
		{"HTTP_ADDR": "0.0.0.0:9081", "AUTH_ISSUER": "https://idp.example/realms/x", "AUTH_AUDIENCE": "catalog"},
	} {
		if _, err := load(env); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}

func TestSecuritySettings(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HTTP_ADDR": "0.0.0.0:9443", "AUTH_ISSUER": "https://idp.example", "AUTH_AUDIENCE": "catalog",
		"AUTH_ROLES_CLAIM": "realm_access.roles", "AUTH_TOKENS_FILE": "/t", "AUTH_READS": "true",
		"ADMIN_ADDR": "127.0.0.1:9090", "CLUSTER_SECRET_FILE": secretFile,
		"TLS_CERT_FILE": "/c.pem", "TLS_KEY_FILE": "/k.pem", "PEER_CA_FILE": "/ca.pem",
	}
	c, err := load(env)
	if err != nil {
		t.Fatal(err)
	}
	s := c.HTTPSecurity
	if !s.AuthEnabled() || !s.AuthReads || s.AuthRolesClaim != "realm_access.roles" || s.AdminAddr != "127.0.0.1:9090" ||
		string(s.ClusterSecret) != "0123456789abcdef0123" || !s.TLS() || s.PeerCAFile != "/ca.pem" {
		t.Fatalf("settings: %+v", s)
	}
	// TLS makes the default advertised URL https.
	if c.AdvertisedURL != "https://0.0.0.0:9443" {
		t.Fatalf("ADVERTISED_URL %s", c.AdvertisedURL)
	}
	if _, err := load(env, "-auth-roles-claim="); err == nil || !strings.Contains(err.Error(), "AUTH_ROLES_CLAIM") {
		t.Fatalf("empty roles claim: %v", err)
	}
	// HTTP_ADDR without a host: advertised as localhost, which it also
	// listens on.
	if c, err := load(map[string]string{"HTTP_ADDR": ":9081", "AUTH": "none"}); err != nil || c.AdvertisedURL != "http://localhost:9081" {
		t.Fatalf("HTTP_ADDR :9081 advertises %q, %v", c.AdvertisedURL, err)
	}
	// Flags win over the environment.
	c, err = load(env, "-auth-reads=false", "-admin-addr", "127.0.0.1:9091")
	if err != nil || c.AuthReads || c.AdminAddr != "127.0.0.1:9091" {
		t.Fatalf("flags: %+v, %v", c.HTTPSecurity, err)
	}
}

func TestSecurityInvalid(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AUTH": "off"}, "AUTH:"},
		{map[string]string{"AUTH": "none", "AUTH_TOKENS_FILE": "/t"}, "choose one"},
		{map[string]string{"AUTH_ISSUER": "https://idp.example"}, "AUTH_AUDIENCE: required"},
		{map[string]string{"AUTH_AUDIENCE": "catalog"}, "AUTH_ISSUER is not"},
		{map[string]string{"AUTH_ISSUER": "http://idp.example", "AUTH_AUDIENCE": "c"}, "AUTH_ISSUER:"},
		{map[string]string{"AUTH_READS": "true"}, "no authentication is configured"},
		{map[string]string{"AUTH_TOKENS_FILE": "/t", "AUTH_READS": "maybe"}, "AUTH_READS"},
		{map[string]string{"ADMIN_ADDR": "9090"}, "ADMIN_ADDR"},
		{map[string]string{"ADMIN_ADDR": "localhost:9081"}, "is HTTP_ADDR"},
		{map[string]string{"CLUSTER_SECRET": "short"}, "fewer than 16"},
		{map[string]string{"CLUSTER_SECRET": "0123456789abcdef", "CLUSTER_SECRET_FILE": "/s"}, "not both"},
		{map[string]string{"CLUSTER_SECRET_FILE": "/does/not/exist"}, "CLUSTER_SECRET_FILE"},
		{map[string]string{"TLS_CERT_FILE": "/c.pem"}, "set both"},
		{map[string]string{"ADVERTISED_URL": "http://a:1/catalog"}, "must be an http(s) origin"},
		{map[string]string{"ADVERTISED_URL": "http://u@a:1"}, "must be an http(s) origin"},
		{map[string]string{"TLS_CERT_FILE": "/c", "TLS_KEY_FILE": "/k", "ADVERTISED_URL": "http://a:1"}, "is http, but TLS_CERT_FILE"},
	} {
		_, err := load(c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.env, err, c.want)
		}
	}
}
