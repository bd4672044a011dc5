// Package kafkasec turns the Kafka security settings (TLS, optionally with
// a client certificate, and SASL PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)
// into options for franz-go clients, so that every Kafka client a
// service runs (the service's own, and those of its command-line tools:
// the catalog's `catalog loadgen` and `catalog schemas`, for instance)
// gets its security from one Config, read from the same variables
// (FromEnv) and flags (Flags):
//
//	KAFKA_TLS              true/false; on by default when a KAFKA_TLS_* file or name is set
//	KAFKA_TLS_CA_FILE      PEM certificates to trust (default: the system's)
//	KAFKA_TLS_CERT_FILE    PEM client certificate (mutual TLS), with
//	KAFKA_TLS_KEY_FILE     its PEM private key
//	KAFKA_TLS_SERVER_NAME  the name to verify in the brokers' certificates (default: the host dialled)
//	KAFKA_SASL_MECHANISM   PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: none)
//	KAFKA_SASL_USERNAME    or KAFKA_SASL_USERNAME_FILE
//	KAFKA_SASL_PASSWORD    or KAFKA_SASL_PASSWORD_FILE
//
// Secrets are read once, when the settings are loaded; a *_FILE's content
// loses one trailing newline (files written by editors and by `echo` end
// with one), nothing else.
package kafkasec

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/bookscatalog/catalog/settingfile"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// TLS is how clients encrypt their connections and check the brokers.
type TLS struct {
	// Enabled turns TLS on; the other fields need it.
	Enabled bool
	// CAFile holds the PEM certificates of the authorities to trust;
	// empty trusts the system's.
	CAFile string
	// CertFile and KeyFile hold a PEM client certificate and its key,
	// for brokers that authenticate clients by certificate (mTLS).
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates must carry;
	// empty checks the host each connection dials.
	ServerName string
}

// SASL is how clients authenticate.
type SASL struct {
	// Mechanism is Plain, ScramSHA256 or ScramSHA512; empty means none.
	Mechanism string
	// Username and Password are the credentials.
	Username, Password string
}

// Config is the security of a Kafka client: the zero value connects in
// plain text without authenticating.
type Config struct {
	TLS  TLS
	SASL SASL
}

// Enabled reports whether c asks for TLS or SASL.
func (c Config) Enabled() bool { return c.TLS.Enabled || c.SASL.Mechanism != "" }

// Protocol names c in Kafka's terms: PLAINTEXT, SSL, SASL_PLAINTEXT or
// SASL_SSL.
func (c Config) Protocol() string {
	switch {
	case c.TLS.Enabled && c.SASL.Mechanism != "":
		return "SASL_SSL"
	case c.TLS.Enabled:
		return "SSL"
	case c.SASL.Mechanism != "":
		return "SASL_PLAINTEXT"
	}
	return "PLAINTEXT"
}

// LogValue shows c in logs without its password.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("protocol", c.Protocol())}
	if c.TLS.Enabled {
		ca := c.TLS.CAFile
		if ca == "" {
			ca = "system"
		}
		attrs = append(attrs, slog.String("ca", ca), slog.Bool("clientCert", c.TLS.CertFile != ""))
		if c.TLS.ServerName != "" {
			attrs = append(attrs, slog.String("serverName", c.TLS.ServerName))
		}
	}
	if c.SASL.Mechanism != "" {
		attrs = append(attrs, slog.String("mechanism", c.SASL.Mechanism), slog.String("user", c.SASL.Username))
	}
	return slog.GroupValue(attrs...)
}

// Warnings says what in c is legal but unsafe, for the log.
func (c Config) Warnings() []string {
	if c.SASL.Mechanism == Plain && !c.TLS.Enabled {
		return []string{"KAFKA_SASL_MECHANISM=PLAIN without KAFKA_TLS sends the password in clear text to every broker"}
	}
	return nil
}

// Validate checks that c is complete and consistent; errors name the
// variable to fix.
func (c Config) Validate() error {
	t := c.TLS
	if !t.Enabled {
		for _, s := range []struct{ name, v string }{
			{"KAFKA_TLS_CA_FILE", t.CAFile}, {"KAFKA_TLS_CERT_FILE", t.CertFile},
			{"KAFKA_TLS_KEY_FILE", t.KeyFile}, {"KAFKA_TLS_SERVER_NAME", t.ServerName},
		} {
			if s.v != "" {
				return fmt.Errorf("%s is set but KAFKA_TLS is false", s.name)
			}
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together: set both for a client certificate, or neither")
	}
	s := c.SASL
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password != "" {
			return errors.New("KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set but KAFKA_SASL_MECHANISM is not: set it to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
	case Plain, ScramSHA256, ScramSHA512:
		if s.Username == "" {
			return fmt.Errorf("KAFKA_SASL_MECHANISM=%s needs KAFKA_SASL_USERNAME (or KAFKA_SASL_USERNAME_FILE)", s.Mechanism)
		}
		if s.Password == "" {
			return fmt.Errorf("KAFKA_SASL_MECHANISM=%s needs KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)", s.Mechanism)
		}
	default:
		return fmt.Errorf("KAFKA_SASL_MECHANISM: %q must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
	}
	return nil
}

// ClientOpts returns the franz-go options that make a client connect as c
// says, reading the certificate files now so that a wrong path or a bad
// file stops the program at start rather than failing every connection.
// The zero Config gives no options.
func (c Config) ClientOpts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if c.TLS.Enabled {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch s := c.SASL; s.Mechanism {
	case Plain:
		opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()))
	case ScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()))
	case ScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()))
	}
	return opts, nil
}

// config builds the client's TLS configuration.
func (t TLS) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := settingfile.Read("KAFKA_TLS_CA_FILE", t.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		certPEM, err := settingfile.Read("KAFKA_TLS_CERT_FILE", t.CertFile)
		if err != nil {
			return nil, err
		}
		keyPEM, err := settingfile.Read("KAFKA_TLS_KEY_FILE", t.KeyFile)
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Flags declares the settings' flags on fs, each defaulting to its
// variable read with getenv; the returned function, called once fs is
// parsed, reads the *_FILE secrets and returns the validated Config.
//
// There is no flag for the password: a command line is visible to every
// user of the machine. -kafka-sasl-password-file takes a file instead.
func Flags(fs *flag.FlagSet, getenv func(string) string) func() (Config, error) {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	tlsOn := fs.String("kafka-tls", env("KAFKA_TLS"), "connect to Kafka over TLS: true or false; default true when a -kafka-tls-* setting is given (KAFKA_TLS)")
	ca := fs.String("kafka-tls-ca-file", env("KAFKA_TLS_CA_FILE"), "PEM certificates of the authorities that sign the brokers' certificates; default the system's (KAFKA_TLS_CA_FILE)")
	cert := fs.String("kafka-tls-cert-file", env("KAFKA_TLS_CERT_FILE"), "PEM client certificate, for brokers that require one (KAFKA_TLS_CERT_FILE)")
	key := fs.String("kafka-tls-key-file", env("KAFKA_TLS_KEY_FILE"), "PEM private key of -kafka-tls-cert-file (KAFKA_TLS_KEY_FILE)")
	serverName := fs.String("kafka-tls-server-name", env("KAFKA_TLS_SERVER_NAME"), "name the brokers' certificates must carry; default the host dialled (KAFKA_TLS_SERVER_NAME)")
	mech := fs.String("kafka-sasl-mechanism", env("KAFKA_SASL_MECHANISM"), "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; default none (KAFKA_SASL_MECHANISM)")
	user := fs.String("kafka-sasl-username", "", "SASL user name (KAFKA_SASL_USERNAME, or a file: KAFKA_SASL_USERNAME_FILE)")
	passFile := fs.String("kafka-sasl-password-file", "", "file holding the SASL password (KAFKA_SASL_PASSWORD_FILE, or the password itself: KAFKA_SASL_PASSWORD)")
	return func() (Config, error) {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		var c Config
		var err error
		c.TLS = TLS{CAFile: *ca, CertFile: *cert, KeyFile: *key, ServerName: *serverName}
		switch {
		case *tlsOn != "":
			if c.TLS.Enabled, err = strconv.ParseBool(*tlsOn); err != nil {
				return Config{}, fmt.Errorf("KAFKA_TLS: %q must be true or false", *tlsOn)
			}
		default:
			c.TLS.Enabled = c.TLS != TLS{}
		}
		c.SASL.Mechanism = strings.ToUpper(*mech)
		if strings.EqualFold(*mech, "none") {
			c.SASL.Mechanism = ""
		}
		if set["kafka-sasl-username"] {
			c.SASL.Username = *user
		} else if c.SASL.Username, err = secret(getenv, "KAFKA_SASL_USERNAME"); err != nil {
			return Config{}, err
		}
		if set["kafka-sasl-password-file"] {
			if c.SASL.Password, err = readSecret("-kafka-sasl-password-file", *passFile); err != nil {
				return Config{}, err
			}
		} else if c.SASL.Password, err = secret(getenv, "KAFKA_SASL_PASSWORD"); err != nil {
			return Config{}, err
		}
		if err := c.Validate(); err != nil {
			return Config{}, err
		}
		return c, nil
	}
}

// FromEnv reads the settings from the variables alone.
func FromEnv(getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("kafkasec", flag.ContinueOnError)
	load := Flags(fs, getenv)
	if err := fs.Parse(nil); err != nil {
		return Config{}, err
	}
	return load()
}

// secret reads the variable name, or the file its name_FILE names; both
// set is an error, since one would silently win.
func secret(getenv func(string) string, name string) (string, error) {
	v, file := getenv(name), strings.TrimSpace(getenv(name+"_FILE"))
	switch {
	case v != "" && file != "":
		return "", fmt.Errorf("%s and %s_FILE are both set: set one", name, name)
	case file != "":
		return readSecret(name+"_FILE", file)
	}
	return v, nil
}

// readSecret reads a secret from path, without its final newline.
func readSecret(setting, path string) (string, error) {
	b, err := settingfile.Read(setting, path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", setting, path)
	}
	return s, nil
}
