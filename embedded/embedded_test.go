package embedded

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookscatalog/catalog/kafkasec"
)

// client connects to b as sec, without retrying a refusal.
func client(t *testing.T, b *Broker, sec kafkasec.Config) *kgo.Client {
	t.Helper()
	opts, err := sec.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr()), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// canConnect reports whether a client authenticating as sec is let in.
func canConnect(t *testing.T, b *Broker, sec kafkasec.Config) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := kadm.NewClient(client(t, b, sec)).ListBrokers(ctx)
	return err == nil
}

func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0", "192.0.2.1:0", "example.com:0"} {
		if b, err := Start(addr, ""); err == nil || !strings.Contains(err.Error(), "loopback address only") {
			if b != nil {
				b.Close()
			}
			t.Errorf("Start(%q) = %v, want a refusal", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		b, err := Start(addr, "", Plaintext())
		if err != nil {
			t.Errorf("Start(%q): %v", addr, err)
			continue
		}
		b.Close()
	}
}

// Without Plaintext, a client must authenticate.
func TestSASLRequired(t *testing.T) {
	b, err := Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	sec := b.Client()
	if sec.SASL.Mechanism != kafkasec.ScramSHA512 || sec.SASL.Username != Username || len(sec.SASL.Password) < 40 {
		t.Fatalf("Client() = %+v", sec.SASL)
	}
	if !canConnect(t, b, sec) {
		t.Error("the broker's own credentials are refused")
	}
	if canConnect(t, b, kafkasec.Config{}) {
		t.Error("a client that does not authenticate is let in")
	}
	wrong := sec
	wrong.SASL.Password = "guess"
	if canConnect(t, b, wrong) {
		t.Error("a wrong password is let in")
	}

	plain, err := Start("127.0.0.1:0", "", Plaintext())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	if plain.Client().Enabled() || !canConnect(t, plain, kafkasec.Config{}) {
		t.Error("a Plaintext broker wants authentication")
	}
}

// produce writes one record to a new topic of b, as sec.
func produce(t *testing.T, b *Broker, sec kafkasec.Config, topic, value string) {
	t.Helper()
	cl := client(t, b, sec)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// consume reads the first record of topic from b, as sec.
func consume(t *testing.T, b *Broker, sec kafkasec.Config, topic string) string {
	t.Helper()
	cl := client(t, b, sec)
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume %s: %v", topic, err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			return string(recs[0].Value)
		}
	}
}

// StartIn creates the credentials at the first start and keeps them: a
// restart takes the same password, and the data is still there.
func TestStartInKeepsCredentials(t *testing.T) {
	dir := t.TempDir()
	b, err := StartIn("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	creds := b.Client().SASL
	produce(t, b, b.Client(), "t", "kept")
	b.Close()

	for _, name := range []string{PasswordFile, ClientPropertiesFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	pw, err := os.ReadFile(filepath.Join(dir, PasswordFile))
	if err != nil || strings.TrimSpace(string(pw)) != creds.Password {
		t.Errorf("%s holds %q, %v; the broker wants %q", PasswordFile, pw, err, creds.Password)
	}
	if got, err := Credentials(dir); err != nil || got != creds {
		t.Errorf("Credentials = %+v, %v; want %+v", got, err, creds)
	}

	b, err = StartIn("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if b.Client().SASL != creds {
		t.Errorf("after a restart the credentials are %+v, want %+v", b.Client().SASL, creds)
	}
	if got := consume(t, b, b.Client(), "t"); got != "kept" {
		t.Errorf("after a restart the record is %q", got)
	}
	// kcat -F: the address and credentials in librdkafka's terms.
	props, err := os.ReadFile(filepath.Join(dir, ClientPropertiesFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"bootstrap.servers=" + b.Addr(), "security.protocol=SASL_PLAINTEXT", "sasl.mechanisms=SCRAM-SHA-512",
		"sasl.username=" + Username, "sasl.password=" + creds.Password} {
		if !strings.Contains(string(props), "\n"+line+"\n") {
			t.Errorf("%s lacks the line %q:\n%s", ClientPropertiesFile, line, props)
		}
	}
}

// A log written before the broker required SASL, or with another password,
// does not lock clients out: the password file is the truth.
func TestOlderLogDoesNotLockOut(t *testing.T) {
	dir := t.TempDir()
	old, err := Start("127.0.0.1:0", filepath.Join(dir, "kafka"), Plaintext())
	if err != nil {
		t.Fatal(err)
	}
	produce(t, old, kafkasec.Config{}, "t", "from before")
	old.Close()

	b, err := StartIn("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := consume(t, b, b.Client(), "t"); got != "from before" {
		t.Errorf("record %q", got)
	}
	first := b.Client()
	b.Close()

	// An operator replaces the password.
	if err := os.WriteFile(filepath.Join(dir, PasswordFile), []byte("a-new-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err = StartIn("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if b.Client().SASL.Password != "a-new-password" || !canConnect(t, b, b.Client()) {
		t.Errorf("the new password %+v is not the broker's", b.Client().SASL)
	}
	if canConnect(t, b, first) {
		t.Error("the replaced password still lets clients in")
	}
}

func TestCredentialsFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := Credentials(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Credentials of a data directory without a broker: %v, want fs.ErrNotExist", err)
	}
	// A password file copied with a looser mode is made private again.
	path := filepath.Join(dir, PasswordFile)
	if err := os.WriteFile(path, []byte("pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if c, err := Credentials(dir); err != nil || c.Password != "pw" {
		t.Fatalf("Credentials = %+v, %v", c, err)
	}
	// Read as KAFKA_SASL_PASSWORD_FILE reads it, so that other
	// instances given this file authenticate with the same password.
	if err := os.WriteFile(path, []byte(" pw with spaces \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromEnv, err := kafkasec.FromEnv(func(k string) string {
		return map[string]string{"KAFKA_SASL_MECHANISM": Mechanism, "KAFKA_SASL_USERNAME": Username, "KAFKA_SASL_PASSWORD_FILE": path}[k]
	})
	if c, err2 := Credentials(dir); err != nil || err2 != nil || c != fromEnv.SASL {
		t.Errorf("Credentials = %+v, %v; KAFKA_SASL_PASSWORD_FILE gives %+v, %v", c, err2, fromEnv.SASL, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Credentials(dir); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("an empty password file: %v", err)
	}
}

// librdkafka (kcat) authenticates only with a broker that lists
// SaslHandshake version 0.
func TestSASLHandshakeV0Listed(t *testing.T) {
	b, err := Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	for range 3 { // every connection, not only the first
		resp, err := apiVersions(b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, k := range resp.ApiKeys {
			if k.ApiKey == int16(kmsg.SASLHandshake) {
				found = true
				if k.MinVersion != 0 || k.MaxVersion != 1 {
					t.Errorf("SaslHandshake versions %d to %d, want 0 to 1", k.MinVersion, k.MaxVersion)
				}
			}
		}
		if !found || len(resp.ApiKeys) < 20 {
			t.Fatalf("ApiVersions lists %d keys, SaslHandshake among them: %v", len(resp.ApiKeys), found)
		}
	}
	// franz-go still connects (it asks for a newer ApiVersions).
	if !canConnect(t, b, b.Client()) {
		t.Error("franz-go cannot connect")
	}
}

// kcat connects with the client properties file, when it is installed.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed")
	}
	dir := t.TempDir()
	b, err := StartIn("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	produce(t, b, b.Client(), "seen-by-kcat", "hello")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-F", filepath.Join(dir, ClientPropertiesFile), "-C", "-t", "seen-by-kcat", "-e", "-q").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello") {
		t.Errorf("kcat: %v\n%s", err, out)
	}
}
