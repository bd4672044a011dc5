package kafkasec_test

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/kafkasec"
)

// env returns a getenv of the variables vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// secretFile writes content to a file of t and returns its path.
func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromEnv(t *testing.T) {
	pwFile := secretFile(t, "s3cret pass\n")
	userFile := secretFile(t, "svc\r\n")
	for _, tc := range []struct {
		name string
		vars map[string]string
		want kafkasec.Config
	}{
		{"nothing: plain text", nil, kafkasec.Config{}},
		{"KAFKA_TLS alone: the system's authorities", map[string]string{"KAFKA_TLS": "true"},
			kafkasec.Config{TLS: kafkasec.TLS{Enabled: true}}},
		{"a CA file turns TLS on", map[string]string{"KAFKA_TLS_CA_FILE": "/ca.pem"},
			kafkasec.Config{TLS: kafkasec.TLS{Enabled: true, CAFile: "/ca.pem"}}},
		{"a server name turns TLS on", map[string]string{"KAFKA_TLS_SERVER_NAME": "kafka.internal"},
			kafkasec.Config{TLS: kafkasec.TLS{Enabled: true, ServerName: "kafka.internal"}}},
		{"mutual TLS", map[string]string{"KAFKA_TLS": "1", "KAFKA_TLS_CERT_FILE": "/c.pem", "KAFKA_TLS_KEY_FILE": "/k.pem"},
			kafkasec.Config{TLS: kafkasec.TLS{Enabled: true, CertFile: "/c.pem", KeyFile: "/k.pem"}}},
		{"SCRAM, mechanism in any case", map[string]string{"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": " p "},
			kafkasec.Config{SASL: kafkasec.SASL{Mechanism: kafkasec.ScramSHA512, Username: "u", Password: " p "}}},
		{"secrets from files lose one final newline", map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME_FILE": userFile, "KAFKA_SASL_PASSWORD_FILE": pwFile},
			kafkasec.Config{SASL: kafkasec.SASL{Mechanism: kafkasec.ScramSHA256, Username: "svc", Password: "s3cret pass"}}},
		{"none is no mechanism", map[string]string{"KAFKA_SASL_MECHANISM": "none"}, kafkasec.Config{}},
		{"SASL_SSL with PLAIN", map[string]string{"KAFKA_TLS": "true", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"},
			kafkasec.Config{TLS: kafkasec.TLS{Enabled: true}, SASL: kafkasec.SASL{Mechanism: kafkasec.Plain, Username: "u", Password: "p"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kafkasec.FromEnv(env(tc.vars))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFromEnvErrors(t *testing.T) {
	empty := secretFile(t, "\n")
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"KAFKA_TLS": "maybe"}, `KAFKA_TLS: "maybe" must be true or false`},
		{map[string]string{"KAFKA_TLS": "false", "KAFKA_TLS_CA_FILE": "/ca.pem"}, "KAFKA_TLS_CA_FILE is set but KAFKA_TLS is false"},
		{map[string]string{"KAFKA_TLS_CERT_FILE": "/c.pem"}, "KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together"},
		{map[string]string{"KAFKA_TLS_KEY_FILE": "/k.pem"}, "KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, `KAFKA_SASL_MECHANISM: "GSSAPI" must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_MECHANISM=PLAIN needs KAFKA_SASL_USERNAME"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_MECHANISM=SCRAM-SHA-256 needs KAFKA_SASL_PASSWORD"},
		{map[string]string{"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_MECHANISM is not"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p", "KAFKA_SASL_PASSWORD_FILE": "/pw"}, "KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD_FILE": "/does/not/exist"}, "KAFKA_SASL_PASSWORD_FILE: open /does/not/exist"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD_FILE": empty}, "KAFKA_SASL_PASSWORD_FILE: " + empty + " is empty"},
	} {
		_, err := kafkasec.FromEnv(env(tc.vars))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FromEnv(%v) = %v, want an error containing %q", tc.vars, err, tc.want)
		}
	}
}

// Flags take precedence over the variables, and the password comes from
// a file, never from the command line.
func TestFlags(t *testing.T) {
	pw := secretFile(t, "from-file\n")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	load := kafkasec.Flags(fs, env(map[string]string{
		"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "env-user", "KAFKA_SASL_PASSWORD": "env-pw", "KAFKA_TLS_CA_FILE": "/env-ca.pem",
	}))
	if err := fs.Parse([]string{"-kafka-sasl-mechanism", "SCRAM-SHA-512", "-kafka-sasl-username", "flag-user",
		"-kafka-sasl-password-file", pw, "-kafka-tls-ca-file", "/flag-ca.pem"}); err != nil {
		t.Fatal(err)
	}
	got, err := load()
	if err != nil {
		t.Fatal(err)
	}
	want := kafkasec.Config{TLS: kafkasec.TLS{Enabled: true, CAFile: "/flag-ca.pem"},
		SASL: kafkasec.SASL{Mechanism: kafkasec.ScramSHA512, Username: "flag-user", Password: "from-file"}}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if fs.Lookup("kafka-sasl-password") != nil {
		t.Error("a -kafka-sasl-password flag would show the password to every user of the machine")
	}
}

// Logs show who connects how, never the password.
func TestLogValueHidesThePassword(t *testing.T) {
	c := kafkasec.Config{TLS: kafkasec.TLS{Enabled: true, CAFile: "/ca.pem"}, SASL: kafkasec.SASL{Mechanism: kafkasec.ScramSHA256, Username: "svc", Password: "hunter2"}}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("kafka", "security", c)
	if out := b.String(); strings.Contains(out, "hunter2") || !strings.Contains(out, "security.protocol=SASL_SSL") ||
		!strings.Contains(out, "security.user=svc") || !strings.Contains(out, "security.ca=/ca.pem") {
		t.Errorf("log line %q", out)
	}
	if s := fmt.Sprint(c.LogValue()); strings.Contains(s, "hunter2") {
		t.Errorf("LogValue %s", s)
	}
}

func TestProtocolAndWarnings(t *testing.T) {
	plain := kafkasec.SASL{Mechanism: kafkasec.Plain, Username: "u", Password: "p"}
	for _, tc := range []struct {
		c    kafkasec.Config
		want string
		warn bool
	}{
		{kafkasec.Config{}, "PLAINTEXT", false},
		{kafkasec.Config{TLS: kafkasec.TLS{Enabled: true}}, "SSL", false},
		{kafkasec.Config{SASL: plain}, "SASL_PLAINTEXT", true},
		{kafkasec.Config{TLS: kafkasec.TLS{Enabled: true}, SASL: plain}, "SASL_SSL", false},
	} {
		if got := tc.c.Protocol(); got != tc.want {
			t.Errorf("Protocol of %+v = %s, want %s", tc.c, got, tc.want)
		}
		if got := len(tc.c.Warnings()) > 0; got != tc.warn {
			t.Errorf("Warnings of %s = %q", tc.want, tc.c.Warnings())
		}
	}
}

// A wrong certificate path or file stops the program at start, naming the
// setting.
func TestClientOptsReadsTheFilesNow(t *testing.T) {
	notPEM := secretFile(t, "not a certificate")
	for _, tc := range []struct {
		tls  kafkasec.TLS
		want string
	}{
		{kafkasec.TLS{Enabled: true, CAFile: "/does/not/exist"}, "KAFKA_TLS_CA_FILE: open /does/not/exist"},
		{kafkasec.TLS{Enabled: true, CAFile: notPEM}, "KAFKA_TLS_CA_FILE: " + notPEM + " holds no PEM certificate"},
		{kafkasec.TLS{Enabled: true, CertFile: notPEM, KeyFile: notPEM}, "KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE"},
	} {
		_, err := kafkasec.Config{TLS: tc.tls}.ClientOpts()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ClientOpts(%+v) = %v, want an error containing %q", tc.tls, err, tc.want)
		}
	}
	if opts, err := (kafkasec.Config{}).ClientOpts(); err != nil || len(opts) != 0 {
		t.Errorf("the zero Config gives %d options, %v", len(opts), err)
	}
}
