package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn, and
// its key, and returns their paths and the certificate.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// The API serves HTTPS (HTTP/2 included) with TLSConfig; plain HTTP on the
// same port gets nothing.
func TestTLSConfigServes(t *testing.T) {
	certFile, keyFile, cert := writeCert(t, t.TempDir(), "catalog")
	cfg, err := TLSConfig(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(fuzzAPI(), ServerConfig{})
	go func() { _ = srv.Serve(tls.NewListener(LimitListener(ln, 10), cfg)) }()
	t.Cleanup(func() { _ = srv.Close() })

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := client.Get("https://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || resp.TLS == nil {
		t.Fatalf("GET /healthz over HTTPS: %s %s %s", resp.Proto, resp.Status, body)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ln.Addr().String() + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain HTTP answered 200 on the HTTPS port")
	}
	if _, err := TLSConfig(certFile, filepath.Join(t.TempDir(), "missing.pem"), nil); err == nil {
		t.Fatal("a missing key file loaded")
	}
}

// A renewed certificate is served without a restart; a broken renewal
// keeps the one in force.
func TestTLSCertificateReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeCert(t, dir, "first")
	now := time.Now()
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: slog.New(slog.DiscardHandler), every: time.Minute, now: func() time.Time { return now }}
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	served := func() string {
		t.Helper()
		c, err := r.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		x, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return x.Subject.CommonName
	}
	writeCert(t, dir, "second")
	bump := func() {
		now = now.Add(time.Minute)
		at := now.Add(time.Hour)
		for _, f := range []string{certFile, keyFile} {
			if err := os.Chtimes(f, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := served(); got != "first" {
		t.Fatalf("before the next check: %s", got)
	}
	bump()
	if got := served(); got != "second" {
		t.Fatalf("after renewal: %s", got)
	}
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	bump()
	if got := served(); got != "second" {
		t.Fatalf("after a broken renewal: %s", got)
	}
}

// Over HTTP/2 one connection carries many requests, so LimitListener does
// not bound the handlers: MaxRequests does, refusing the extra ones at
// once with 503, and a connection may not open more than MaxStreams.
func TestRequestsBoundedOverHTTP2(t *testing.T) {
	certFile, keyFile, cert := writeCert(t, t.TempDir(), "catalog")
	cfg, err := TLSConfig(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in, release := make(chan struct{}, 16), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			in <- struct{}{}
			<-release
		}
	})
	srv := NewServer(h, ServerConfig{MaxRequests: 2})
	if srv.HTTP2 == nil || srv.HTTP2.MaxConcurrentStreams != DefaultMaxStreams {
		t.Fatalf("HTTP/2 streams per connection not bounded: %+v", srv.HTTP2)
	}
	go func() { _ = srv.Serve(tls.NewListener(LimitListener(ln, 1), cfg)) }()
	t.Cleanup(func() { _ = srv.Close() })

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	// One connection first, which the requests below then share.
	if resp, err := client.Get("https://" + ln.Addr().String() + "/fast"); err != nil || resp.ProtoMajor != 2 {
		t.Fatalf("GET over HTTP/2: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	type answer struct {
		status, proto int
		retry         string
		err           error
	}
	answers := make(chan answer, 4)
	for range 4 {
		go func() {
			resp, err := client.Get("https://" + ln.Addr().String() + "/slow")
			if err != nil {
				answers <- answer{err: err}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			answers <- answer{status: resp.StatusCode, proto: resp.ProtoMajor, retry: resp.Header.Get("Retry-After")}
		}()
	}
	// Two requests are held; the other two must be answered while they
	// are, each with 503 and Retry-After.
	for range 2 {
		select {
		case a := <-answers:
			if a.err != nil || a.status != http.StatusServiceUnavailable || a.proto != 2 || a.retry == "" {
				t.Fatalf("a request beyond MaxRequests: %+v %v", a, a.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("requests beyond MaxRequests were not refused; %d handlers running", len(in))
		}
	}
	if len(in) != 2 {
		t.Fatalf("%d handlers running, want 2", len(in))
	}
	close(release)
	for range 2 {
		if a := <-answers; a.err != nil || a.status != http.StatusOK {
			t.Fatalf("a held request: %+v", a)
		}
	}
}
