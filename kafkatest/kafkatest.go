// Package kafkatest gives tests a Kafka cluster: the real one named by the
// KAFKA_BROKERS environment variable when set (CI runs the suite against
// Apache Kafka this way), else a fresh in-process kfake broker.
//
// Brokers' kfake is a plain-text broker (embedded.Plaintext): most tests
// are about the runtime, not security, and make their own clients. Tests
// of security ask for Secured: a broker that requires TLS with client
// certificates and SASL, and authorizes every request by ACLs, with a
// super user's settings to administer it. It is the real broker of
// KAFKA_BROKERS when the KAFKA_TLS_* and KAFKA_SASL_* variables say how
// to connect to it as a super user (scripts/kafka's KAFKA_SECURITY=sasl_ssl
// mode writes them), else kfake set up the same way.
//
// A test of a service built on the runtime starts like this (its functions
// need the test's T, so there is no runnable example):
//
//	func TestDeposit(t *testing.T) {
//		brokers := kafkatest.Brokers(t) // a kfake broker stops when t ends
//		app, err := eskafka.NewApp(eskafka.AppConfig{
//			Config: eskafka.Config{
//				Brokers:    brokers,
//				Service:    kafkatest.Service(t), // topics of its own on a shared cluster
//				InstanceID: "one", Partitions: 3,
//			},
//			ReplicationFactor: kafkatest.ReplicationFactor(t, brokers),
//		})
//		...
//	}
package kafkatest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/embedded"
	"github.com/bookscatalog/catalog/kafkasec"
)

// Real reports whether tests run against an external (real) Kafka.
func Real() bool { return os.Getenv("KAFKA_BROKERS") != "" }

// Brokers returns bootstrap servers for t. With kfake, the broker stops when
// the test ends.
func Brokers(t testing.TB) []string {
	t.Helper()
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		return strings.Split(env, ",")
	}
	b, err := embedded.Start("127.0.0.1:0", "", embedded.Plaintext())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return []string{b.Addr()}
}

// Service returns a service name unique to this test run, so that tests
// sharing a real cluster never share topics or groups.
func Service(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	// Kafka topic names allow only [a-zA-Z0-9._-].
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	return "t-" + name + "-" + hex.EncodeToString(b[:])
}

// Secured is a broker that requires TLS, a client certificate and SASL,
// with ACLs on.
type Secured struct {
	// Brokers are its bootstrap servers.
	Brokers []string
	// Admin connects as a super user.
	Admin kafkasec.Config
}

// SecuredBroker returns the real broker of KAFKA_BROKERS if the KAFKA_TLS_*
// and KAFKA_SASL_* variables say how to connect to it as a super user; t
// is skipped if KAFKA_BROKERS is set without them (a broker without
// security cannot show what security does). Else it starts a kfake broker
// secured the same way, stopped when t ends: TLS with certificates made
// for the test and client certificates required, SASL (PLAIN for the
// super user "admin", SCRAM users added with NewUser) and ACLs.
func SecuredBroker(t testing.TB) *Secured {
	t.Helper()
	if Real() {
		sec, err := kafkasec.FromEnv(os.Getenv)
		if err != nil {
			t.Fatalf("the KAFKA_TLS_* and KAFKA_SASL_* variables: %v", err)
		}
		if sec.SASL.Mechanism == "" || !sec.TLS.Enabled {
			t.Skip("KAFKA_BROKERS is set without KAFKA_TLS_* and KAFKA_SASL_* settings of a super user: not a secured broker (scripts/kafka start with KAFKA_SECURITY=sasl_ssl is)")
		}
		return &Secured{Brokers: strings.Split(os.Getenv("KAFKA_BROKERS"), ","), Admin: sec}
	}
	files := TLSFiles(t)
	cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	var pw [16]byte
	_, _ = rand.Read(pw[:])
	password := hex.EncodeToString(pw[:])
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.TLS(&tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
		}),
		kfake.EnableSASL(),
		kfake.Superuser(kafkasec.Plain, "admin", password),
		kfake.EnableACLs(),
		kfake.GroupMinSessionTimeout(time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &Secured{
		Brokers: c.ListenAddrs(),
		Admin: kafkasec.Config{
			TLS:  kafkasec.TLS{Enabled: true, CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey},
			SASL: kafkasec.SASL{Mechanism: kafkasec.Plain, Username: "admin", Password: password},
		},
	}
}

// Client returns a client of s connecting as sec, closed when t ends.
func (s *Secured) Client(t testing.TB, sec kafkasec.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	secOpts, err := sec.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(s.Brokers...)}, secOpts...), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Connect asks the broker for its list of brokers as sec, which takes a
// connection authenticated as sec says; it does not retry, so a refusal
// comes back as it is.
func (s *Secured) Connect(t testing.TB, sec kafkasec.Config) error {
	t.Helper()
	cl := s.Client(t, sec, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := kadm.NewClient(cl).ListBrokers(ctx)
	return err
}

// NewUser creates a SCRAM user (mechanism ScramSHA256 or ScramSHA512)
// with a name unique to this run starting with prefix and a random
// password, and returns its settings: the admin's TLS and the user's
// SASL. It has no ACLs, and is deleted when t ends.
func (s *Secured) NewUser(t testing.TB, prefix, mechanism string) kafkasec.Config {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	user := kafkasec.SASL{Mechanism: mechanism, Username: prefix + "-" + hex.EncodeToString(b[:4]), Password: hex.EncodeToString(b[4:]) + "-pw"}
	m := kadm.ScramSha256
	if mechanism == kafkasec.ScramSHA512 {
		m = kadm.ScramSha512
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := kadm.NewClient(s.Client(t, s.Admin)).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: user.Username, Mechanism: m, Iterations: 4096, Password: user.Password}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("create SCRAM user %s: %v", user.Username, err)
	}
	// A real broker outlives the test.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := kadm.NewClient(s.Client(t, s.Admin)).AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: user.Username, Mechanism: m}}, nil); err != nil {
			t.Logf("delete SCRAM user %s: %v", user.Username, err)
		}
	})
	return kafkasec.Config{TLS: s.Admin.TLS, SASL: user}
}

// TLSPaths are the PEM files of a certificate authority, a server
// certificate for 127.0.0.1, ::1 and localhost, and a client certificate,
// all signed by the authority, with their keys.
type TLSPaths struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// TLSFiles makes a certificate authority and a server and a client
// certificate signed by it, valid for a day, and writes them to a
// temporary directory of t.
func TLSFiles(t testing.TB) TLSPaths {
	t.Helper()
	dir := t.TempDir()
	p := TLSPaths{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
	}
	now := time.Now()
	caKey := newKey(t)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafkatest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.CA, "CERTIFICATE", caDER)
	for i, leaf := range []struct {
		cert, key string
		tmpl      x509.Certificate
	}{
		{p.ServerCert, p.ServerKey, x509.Certificate{
			Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}},
		{p.ClientCert, p.ClientKey, x509.Certificate{
			Subject: pkix.Name{CommonName: "kafkatest client"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
	} {
		tmpl := leaf.tmpl
		tmpl.SerialNumber = big.NewInt(int64(i + 2))
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		key := newKey(t)
		der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, leaf.cert, "CERTIFICATE", der)
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, leaf.key, "PRIVATE KEY", keyDER)
	}
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
