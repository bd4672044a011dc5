package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/auth"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/httpapi"
	"github.com/bookscatalog/catalog/internal/config"
	"github.com/bookscatalog/catalog/internal/service"
)

// tokenFile writes a token file with a token per role (its subject named
// after the role) and returns its path and the tokens by role.
func tokenFile(t *testing.T) (string, map[auth.Role]string) {
	t.Helper()
	tokens := map[auth.Role]string{}
	var lines []string
	for _, role := range auth.Roles {
		tok, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = tok
		lines = append(lines, auth.HashToken(tok)+" "+string(role)+" "+string(role)+"-subject")
	}
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tokens
}

func bearer(token string) http.Header { return hdr("Authorization", "Bearer "+token) }

func subjectOf(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == eskafka.HeaderSubject {
			return string(h.Value)
		}
	}
	return ""
}

// With a token file, writes need a writer's token, operator endpoints an
// admin's, reads stay open; the writer's subject is on the command and
// its events.
func TestWritesNeedAToken(t *testing.T) {
	path, tokens := tokenFile(t)
	h := newHarness(t, func(h *harness) {
		h.Configure = func(c *config.Config) { c.AuthTokensFile = path }
	})
	i := h.start()
	body := authorBody("jane-austen", "Jane", "Austen")

	r := i.do(http.MethodPost, "/authors", body, nil)
	r.expectProblem(t, http.StatusUnauthorized, "")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="catalog"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	i.do(http.MethodPost, "/authors", body, bearer("catalog_guessed")).expectProblem(t, http.StatusUnauthorized, "")
	i.do(http.MethodPost, "/authors", body, bearer(tokens[auth.RoleReader])).expectProblem(t, http.StatusForbidden, "")
	i.do(http.MethodPost, "/authors", body, bearer(tokens[auth.RoleWriter])).expect(t, http.StatusCreated, nil)
	i.do(http.MethodDelete, "/authors/jane-austen", nil, nil).expectProblem(t, http.StatusUnauthorized, "")

	// Reads, the page and the probes are open; operator endpoints are not.
	i.get("/authors/jane-austen").expect(t, http.StatusOK, nil)
	i.get("/").expect(t, http.StatusOK, nil)
	i.get("/metadata").expectProblem(t, http.StatusUnauthorized, "")
	i.do(http.MethodGet, "/metrics", nil, bearer(tokens[auth.RoleWriter])).expectProblem(t, http.StatusForbidden, "")
	i.do(http.MethodGet, "/metadata", nil, bearer(tokens[auth.RoleAdmin])).expect(t, http.StatusOK, nil)
	i.do(http.MethodGet, "/metrics", nil, bearer(tokens[auth.RoleAdmin])).expect(t, http.StatusOK, nil)

	topics := eskafka.AggregateTopics(h.Service, "authors")
	for _, topic := range []string{topics.Commands, topics.Events} {
		recs := h.readCommitted(topic)
		if len(recs) != 1 {
			t.Fatalf("%s: %d records, want 1", topic, len(recs))
		}
		if got := subjectOf(recs[0]); got != "writer-subject" {
			t.Errorf("%s: subject %q, want writer-subject (headers %v)", topic, got, recs[0].Headers)
		}
	}
}

// With AUTH_READS, reads need a reader's token too; the page and the
// probes stay open.
func TestReadsNeedATokenWithAuthReads(t *testing.T) {
	path, tokens := tokenFile(t)
	h := newHarness(t, func(h *harness) {
		h.Configure = func(c *config.Config) { c.AuthTokensFile, c.AuthReads = path, true }
	})
	i := h.start()
	i.get("/authors").expectProblem(t, http.StatusUnauthorized, "")
	i.get("/events/stream").expectProblem(t, http.StatusUnauthorized, "")
	i.do(http.MethodGet, "/authors", nil, bearer(tokens[auth.RoleReader])).expect(t, http.StatusOK, nil)
	i.get("/").expect(t, http.StatusOK, nil)
	i.get("/healthz").expect(t, http.StatusOK, nil)
}

// With ADMIN_ADDR the operator endpoints are served there, not on
// HTTP_ADDR.
func TestAdminAddr(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.Configure = func(c *config.Config) { c.AdminAddr = "127.0.0.1:0" }
	})
	i := h.start()
	i.get("/metadata").expectProblem(t, http.StatusNotFound, "")
	i.get("/metrics").expectProblem(t, http.StatusNotFound, "")
	admin := *i
	admin.URL = "http://" + i.Svc.AdminAddr()
	admin.get("/metadata").expect(t, http.StatusOK, nil)
	admin.get("/metrics").expect(t, http.StatusOK, nil)
	admin.get("/authors").expectProblem(t, http.StatusNotFound, "")
}

// With TLS and ADMIN_ADDR the operator listener is HTTPS as the API is,
// HTTP/2 included: it offers h2, so it must speak it (curl and Prometheus
// take it up).
func TestAdminAddrHTTPS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	h := newHarness(t, func(h *harness) {
		h.Configure = func(c *config.Config) {
			c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
			c.AdminAddr = "127.0.0.1:0"
		}
	})
	i := h.launch(h.DataDir)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
	}}
	poll(t, "GET /healthz on ADMIN_ADDR over HTTP/2", func() error {
		resp, err := client.Get("https://" + i.Svc.AdminAddr() + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			return fmt.Errorf("%s over %s, want 200 over HTTP/2", resp.Status, resp.Proto)
		}
		return nil
	})
}

// The API server's own errors (here a failed TLS handshake) go to the
// service's log, in LOG_FORMAT, not to the standard logger's plain lines.
func TestHTTPServerErrorsInTheServiceLog(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t, t.TempDir())
	logFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = logFile // the service logs to os.Stderr (config.Logger)
	t.Cleanup(func() { os.Stderr = stderr })
	h := newHarness(t, func(h *harness) {
		h.Configure = func(c *config.Config) {
			c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
			c.LogFormat, c.LogLevel = "json", slog.LevelWarn
		}
	})
	i := h.launch(h.DataDir)
	os.Stderr = stderr
	// Plain HTTP to the HTTPS port: net/http reports a handshake error.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(i.URL + "/healthz"); err == nil {
		resp.Body.Close()
	}
	poll(t, "the TLS handshake error in the service's JSON log", func() error {
		b, err := os.ReadFile(logFile.Name())
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(line, "TLS handshake error") {
				if !strings.HasPrefix(line, "{") {
					t.Fatalf("logged outside the service's JSON log: %s", line)
				}
				return nil
			}
		}
		return fmt.Errorf("not logged: %s", b)
	})
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "catalog test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return certFile, keyFile, pool
}

// With TLS_CERT_FILE and TLS_KEY_FILE the API is HTTPS, and the instances
// forward to each other over HTTPS, trusting PEER_CA_FILE.
func TestHTTPS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	h := newHarness(t, func(h *harness) {
		h.Configure = func(c *config.Config) {
			c.TLSCertFile, c.TLSKeyFile, c.PeerCAFile = certFile, keyFile, certFile
			c.ClusterSecret = []byte("the cluster secret of this test!")
		}
	})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var instances []*instance
	for n := range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := h.config(filepath.Join(h.DataDir, string(rune('a'+n))))
		cfg.AdvertisedURL = "https://" + ln.Addr().String()
		ctx, cancel := context.WithCancel(context.Background())
		svc, err := service.New(ctx, cfg, service.Options{Listener: ln, ClientOpts: h.ClientOpts})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		inst := &instance{t: t, Svc: svc, URL: cfg.AdvertisedURL, cancel: cancel, done: make(chan error, 1), client: client}
		go func() { inst.done <- svc.Run(ctx) }()
		t.Cleanup(inst.stop)
		inst.waitReady(60 * time.Second)
		instances = append(instances, inst)
	}
	a, b := instances[0], instances[1]
	poll(t, "both instances to own authors partitions", func() error {
		var m service.Metadata
		a.get("/metadata").expect(t, http.StatusOK, &m)
		if len(m.Instances) != 2 {
			return fmt.Errorf("instances %v", m.Instances)
		}
		return nil
	})
	codes := []string{"ann", "bob", "cy", "dee", "eve", "fay"}
	for _, c := range codes {
		a.createAuthor(t, c, "First", "Last")
	}
	for _, c := range codes {
		b.getAuthor(t, c, http.StatusOK)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + strings.TrimPrefix(a.URL, "https://") + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
		t.Fatal("plain HTTP answered on the HTTPS port")
	}
}

// Instances with a cluster secret forward to each other with proofs; a
// request from outside that claims to be forwarded is refused; and a
// process that joins their consumer groups advertising its own URL (here:
// the service itself, without the secret) gets no partitions and no read
// ever reaches it, while writes go on.
func TestClusterSecret(t *testing.T) {
	secret := []byte("the cluster secret of this test!")
	h := newHarness(t, func(h *harness) {
		h.Configure = func(c *config.Config) { c.ClusterSecret = secret }
	})
	a := h.startIn(filepath.Join(h.DataDir, "a"))
	b := h.startIn(filepath.Join(h.DataDir, "b"))
	twoOwners := func(i *instance) func() error {
		return func() error {
			var m service.Metadata
			i.get("/metadata").expect(t, http.StatusOK, &m)
			if !slices.Equal(m.Instances, sorted(a.URL, b.URL)) {
				return fmt.Errorf("instances %v", m.Instances)
			}
			return everyPartitionOwned(m)
		}
	}
	poll(t, "a and b to share every stage", twoOwners(a))
	codes := []string{"ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal"}
	for _, c := range codes {
		a.createAuthor(t, c, "First", "Last")
	}
	for _, i := range []*instance{a, b} {
		for _, c := range codes {
			i.getAuthor(t, c, http.StatusOK)
		}
		if page := i.listAuthors(t, ""); len(page.Items) != len(codes) {
			t.Fatalf("%s lists %d authors, want %d", i.URL, len(page.Items), len(codes))
		}
	}

	// The forwarding header from outside: refused, not a partial list.
	r := b.do(http.MethodGet, "/authors", nil, hdr(httpapi.ForwardedHeader, a.URL))
	if p := r.expectProblem(t, http.StatusBadRequest, httpapi.ForwardedHeader); !strings.Contains(p.Detail, "no proof") {
		t.Fatalf("spoofed forwarding header: %s", r)
	}

	// The rogue: an instance without the secret, advertising a server
	// that records whatever reaches it.
	var hits atomic.Int32
	rogueSite := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"code": "ann", "firstName": "Spoofed", "lastName": "Data"})
	}))
	defer rogueSite.Close()
	h.Configure = func(c *config.Config) { c.AdvertisedURL = rogueSite.URL }
	rogue := h.launch(filepath.Join(h.DataDir, "rogue"))
	poll(t, "the rogue to have joined every group (it learns the owners)", func() error {
		var m service.Metadata
		rogue.get("/metadata").expect(t, http.StatusOK, &m)
		for name, st := range m.Stages {
			for _, u := range st.Owners {
				if u == "" {
					return fmt.Errorf("the rogue does not know the owners of %s yet", name)
				}
			}
		}
		return nil
	})
	for _, i := range []*instance{a, b} {
		if err := twoOwners(i)(); err != nil {
			t.Fatalf("%s after the rogue joined: %v", i.URL, err)
		}
		for _, c := range codes {
			if got := i.getAuthor(t, c, http.StatusOK); got.FirstName != "First" {
				t.Fatalf("%s: %s = %+v", i.URL, c, got)
			}
		}
	}
	b.createAuthor(t, "ivy", "Ivy", "Compton-Burnett")
	for _, c := range codes {
		a.createAuthor(t, c+"-2", "Second", "Round")
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the rogue's URL was asked %d times", n)
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// everyPartitionOwned reports a partition of a stage in m that has no
// owner.
func everyPartitionOwned(m service.Metadata) error {
	for name, st := range m.Stages {
		for p, u := range st.Owners {
			if u == "" {
				return fmt.Errorf("stage %s: partition %d has no owner", name, p)
			}
		}
	}
	return nil
}
