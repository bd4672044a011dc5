// Package embedded runs an in-process Kafka broker (franz-go's kfake) so
// that a service built on the runtime runs on a laptop with no setup, and
// examples and tests have a broker of their own. It persists its log under
// a directory, so data survives restarts, and listens on a real TCP address
// so that kcat, rpk and other instances can use it.
//
// The broker listens on a loopback address only, and clients must
// authenticate with SASL/SCRAM-SHA-512: another user or program on the
// machine must not read or write the service's topics without the
// password. A service's broker (StartIn) keeps its password in
// DATA_DIR/kafka-password, created at its first start with mode 0600, and
// writes DATA_DIR/kafka-client.properties for kcat and other librdkafka
// clients (kcat -F data/kafka-client.properties -L). Tests that want a
// plain-text broker ask for one with Plaintext. (The user name "catalog"
// and the cluster id "catalog-embedded" are fixed names kept from the
// service the runtime was first written for, so that clients configured
// with them keep working.)
package embedded

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookscatalog/catalog/kafkasec"
)

// The embedded broker's user and mechanism, and the files StartIn keeps in
// the data directory.
const (
	Username  = "catalog"
	Mechanism = kafkasec.ScramSHA512
	// PasswordFile holds the password (mode 0600), for
	// KAFKA_SASL_PASSWORD_FILE.
	PasswordFile = "kafka-password"
	// ClientPropertiesFile says how to connect, in librdkafka's
	// properties (kcat -F).
	ClientPropertiesFile = "kafka-client.properties"
)

// Broker is a running embedded broker.
type Broker struct {
	c      *kfake.Cluster
	addr   string
	client kafkasec.Config
}

// Option adjusts a broker.
type Option func(*options)

type options struct {
	plaintext bool
	sasl      *kafkasec.SASL
}

// Plaintext lets clients in without authenticating: for tests, whose
// clients connect to a broker of their own.
func Plaintext() Option { return func(o *options) { o.plaintext = true } }

// WithSASL sets the credentials clients must present, instead of random
// ones.
func WithSASL(s kafkasec.SASL) Option { return func(o *options) { o.sasl = &s } }

// Start starts a single-node broker listening on addr ("host:port" with a
// loopback host; port 0 picks a free one). dir, if not empty, holds its
// data. Clients authenticate as Client says: with the credentials of
// WithSASL, else with random ones, unless Plaintext.
func Start(addr, dir string, opts ...Option) (*Broker, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker address %q: %w", addr, err)
	}
	if !loopback(host) {
		return nil, fmt.Errorf("embedded broker address %q: the embedded broker listens on a loopback address only (127.0.0.1, ::1 or localhost); "+
			"to serve other machines, run Kafka and set KAFKA_BROKERS", addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker port %q: %w", portStr, err)
	}
	if port == 0 {
		// kfake needs the port up front: reserve a free one.
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", host, err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	kopts := []kfake.Opt{
		kfake.Ports(port),
		kfake.ListenFn(func(network, a string) (net.Listener, error) {
			_, p, _ := net.SplitHostPort(a)
			l, err := net.Listen(network, net.JoinHostPort(host, p))
			if err != nil {
				return nil, err
			}
			return boundedListener{l}, nil
		}),
		kfake.ClusterID("catalog-embedded"),
		// Let tests and laptops rebalance quickly after a crash.
		kfake.GroupMinSessionTimeout(time.Second),
		kfake.BrokerConfigs(map[string]string{"transaction.max.timeout.ms": "900000"}),
	}
	var client kafkasec.Config
	if !o.plaintext {
		creds := kafkasec.SASL{Mechanism: Mechanism, Username: Username, Password: newPassword()}
		if o.sasl != nil {
			creds = *o.sasl
		}
		if creds.Mechanism == "" || creds.Username == "" || creds.Password == "" {
			return nil, errors.New("embedded broker: SASL credentials need a mechanism, a user name and a password")
		}
		client.SASL = creds
		kopts = append(kopts, kfake.EnableSASL(), kfake.Superuser(creds.Mechanism, creds.Username, creds.Password))
		if dir != "" {
			// kfake keeps its users in sasl.json and, when it finds
			// the file, prefers them to the ones it is given: a log
			// written before SASL (no users) or before the password
			// file was replaced would lock every client out. The
			// credentials given are the truth.
			if err := os.Remove(filepath.Join(dir, "sasl.json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("embedded broker: %w", err)
			}
		}
	}
	if dir != "" {
		// The log and sasl.json, whose salted password is all a SCRAM
		// client needs to log in, are the broker's: nobody else may
		// read them, whatever the umask made of the folder before.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		kopts = append(kopts, kfake.DataDir(dir))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s: %w", addr, err)
	}
	b := &Broker{c: c, addr: c.ListenAddrs()[0], client: client}
	if !o.plaintext {
		if err := advertiseSASLHandshakeV0(c, b.addr); err != nil {
			c.Close()
			return nil, fmt.Errorf("start embedded broker on %s: %w", addr, err)
		}
	}
	return b, nil
}

// advertiseSASLHandshakeV0 makes the broker list SaslHandshake from
// version 0 in its ApiVersions answers, as Apache Kafka does; kfake lists
// version 1 only. librdkafka (kcat) authenticates only with a broker that
// lists version 0, though it then uses version 1 (librdkafka PR #4983),
// so without this no librdkafka client could connect. A client that
// really sends version 0 is refused, as it would be anyway.
//
// kfake lets a control function answer a request but not amend kfake's
// own answer, so the answer is kfake's, asked for once here, amended.
func advertiseSASLHandshakeV0(c *kfake.Cluster, addr string) error {
	tmpl, err := apiVersions(addr)
	if err != nil {
		return fmt.Errorf("ask the broker for its API versions: %w", err)
	}
	for i := range tmpl.ApiKeys {
		if tmpl.ApiKeys[i].ApiKey == int16(kmsg.SASLHandshake) {
			tmpl.ApiKeys[i].MinVersion = 0
		}
	}
	var answer func(kmsg.Request) (kmsg.Response, error, bool)
	answer = func(r kmsg.Request) (kmsg.Response, error, bool) {
		// A fresh control function per request: kfake remembers the
		// last request of every connection a control function saw,
		// which would grow with every connection ever made.
		c.DropControl()
		c.ControlKey(int16(kmsg.ApiVersions), answer)
		req := r.(*kmsg.ApiVersionsRequest)
		if req.Version > tmpl.Version {
			return nil, nil, false // kfake's own checks of newer versions apply
		}
		resp := *tmpl
		resp.Version = req.Version
		resp.ApiKeys = slices.Clone(tmpl.ApiKeys)
		return &resp, nil, true
	}
	c.ControlKey(int16(kmsg.ApiVersions), answer)
	return nil
}

// apiVersions asks the broker at addr for its ApiVersions (version 4, which
// every client in use sends or is downgraded to) on a connection of its
// own: before authentication, the request clients make first.
func apiVersions(addr string) (*kmsg.ApiVersionsResponse, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, err
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 4
	req.ClientSoftwareName, req.ClientSoftwareVersion = "catalog-embedded", "1"
	if _, err := conn.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("catalog-embedded")).AppendRequest(nil, req, 1)); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return nil, fmt.Errorf("ApiVersions answer of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return nil, err
	}
	// The ApiVersions response header is the correlation id alone,
	// never flexible.
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if err := resp.ReadFrom(body[4:]); err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	return resp, nil
}

// StartIn starts the broker as the service runs it with DATA_DIR dataDir:
// its log in dataDir/kafka, clients authenticating with the credentials
// of dataDir (created at the first start), which dataDir's
// ClientPropertiesFile then lists with the address.
func StartIn(addr, dataDir string) (*Broker, error) {
	creds, err := credentials(dataDir, true)
	if err != nil {
		return nil, err
	}
	b, err := Start(addr, filepath.Join(dataDir, "kafka"), WithSASL(creds))
	if err != nil {
		return nil, err
	}
	if err := writeClientProperties(dataDir, b.addr, creds); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Credentials returns the credentials of the broker StartIn runs with
// DATA_DIR dataDir; an error wrapping fs.ErrNotExist means it has never
// started there.
func Credentials(dataDir string) (kafkasec.SASL, error) {
	return credentials(dataDir, false)
}

// credentials reads dataDir's password, creating it first if create.
func credentials(dataDir string, create bool) (kafkasec.SASL, error) {
	path := filepath.Join(dataDir, PasswordFile)
	creds := kafkasec.SASL{Mechanism: Mechanism, Username: Username}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		// The file is a secret: keep it so even if it was copied
		// with another mode.
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return creds, fmt.Errorf("embedded broker credentials: %w", err)
			}
		}
	case errors.Is(err, fs.ErrNotExist) && create:
		if b, err = createPassword(dataDir, path); err != nil {
			return creds, fmt.Errorf("embedded broker credentials: %w", err)
		}
	default:
		return creds, fmt.Errorf("embedded broker credentials: %w", err)
	}
	// As KAFKA_SASL_PASSWORD_FILE reads it (other instances point it
	// here): without one final newline.
	creds.Password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if creds.Password == "" {
		return creds, fmt.Errorf("embedded broker credentials: %s is empty (delete it: the next start creates another)", path)
	}
	return creds, nil
}

// createPassword writes a new random password to path, unless another
// process got there first (then it returns that one): it is written to a
// temporary file and linked into place, so no reader sees half of it.
func createPassword(dataDir, path string) ([]byte, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	pw := []byte(newPassword() + "\n")
	tmp, err := writeTemp(dataDir, pw)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return os.ReadFile(path)
		}
		return nil, err
	}
	return pw, nil
}

// writeClientProperties writes dataDir's ClientPropertiesFile: how kcat
// connects to the broker at addr.
func writeClientProperties(dataDir, addr string, creds kafkasec.SASL) error {
	content := fmt.Sprintf(`# The embedded Kafka broker (DATA_DIR %s), for kcat and other
# librdkafka clients:  kcat -F %s -L
# Written at every start of the broker; the password is %s's.
bootstrap.servers=%s
security.protocol=SASL_PLAINTEXT
sasl.mechanisms=%s
sasl.username=%s
sasl.password=%s
`, dataDir, filepath.Join(dataDir, ClientPropertiesFile), PasswordFile, addr, creds.Mechanism, creds.Username, creds.Password)
	tmp, err := writeTemp(dataDir, []byte(content))
	if err != nil {
		return fmt.Errorf("embedded broker client properties: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dataDir, ClientPropertiesFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("embedded broker client properties: %w", err)
	}
	return nil
}

// writeTemp writes b to a new file of mode 0600 in dir and returns its
// name.
func writeTemp(dir string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".kafka-*.tmp") // mode 0600
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// newPassword returns 256 random bits, printable.
func newPassword() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// loopback reports whether host names a loopback address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Addr returns the broker's bootstrap address.
func (b *Broker) Addr() string { return b.addr }

// Client returns how clients connect: the SASL credentials they must
// present (none for a Plaintext broker).
func (b *Broker) Client() kafkasec.Config { return b.client }

// Close stops the broker, flushing its data.
func (b *Broker) Close() { b.c.Close() }
