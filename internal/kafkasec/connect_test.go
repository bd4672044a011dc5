package kafkasec_test

// The settings against a broker that requires TLS with client certificates
// and SASL: kfake, or, in CI, Apache Kafka with a SASL_SSL listener
// (kafkatest.SecuredBroker).

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/internal/kafkasec"
	"github.com/bookscatalog/catalog/internal/kafkatest"
)

// connect asks the broker for its list of brokers as sec, which takes a
// connection authenticated as sec says; it does not retry, so a refusal
// comes back as it is.
func connect(t *testing.T, s *kafkatest.Secured, sec kafkasec.Config) error {
	t.Helper()
	cl := s.Client(t, sec, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := kadm.NewClient(cl).ListBrokers(ctx)
	return err
}

// authFailed reports whether err is the broker's refusal of the
// credentials. kfake closes the connection instead of answering
// SASL_AUTHENTICATION_FAILED as Apache Kafka does.
func authFailed(err error) bool {
	if !kafkatest.Real() {
		return err != nil
	}
	return errors.Is(err, kerr.SaslAuthenticationFailed)
}

// Each mechanism authenticates over TLS with a client certificate.
func TestMechanisms(t *testing.T) {
	s := kafkatest.SecuredBroker(t)
	for _, sec := range []kafkasec.Config{
		s.Admin, // PLAIN
		s.NewUser(t, "scram256", kafkasec.ScramSHA256),
		s.NewUser(t, "scram512", kafkasec.ScramSHA512),
	} {
		if err := connect(t, s, sec); err != nil {
			t.Errorf("%s as %s: %v", sec.SASL.Mechanism, sec.SASL.Username, err)
		}
	}
}

// Each part of the settings is applied: leave one out or get it wrong, and
// the broker (or the client, checking the broker) refuses.
func TestRefusals(t *testing.T) {
	s := kafkatest.SecuredBroker(t)
	user := s.NewUser(t, "scram", kafkasec.ScramSHA512)
	if err := connect(t, s, user); err != nil {
		t.Fatalf("the right settings: %v", err)
	}
	wrongPassword := user
	wrongPassword.SASL.Password += "x"
	if err := connect(t, s, wrongPassword); !authFailed(err) {
		t.Errorf("a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	otherMechanism := user
	otherMechanism.SASL.Mechanism = kafkasec.ScramSHA256 // the user has SHA-512 credentials only
	if err := connect(t, s, otherMechanism); !authFailed(err) {
		t.Errorf("a mechanism the user has no credentials for: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	noSASL := user
	noSASL.SASL = kafkasec.SASL{}
	if err := connect(t, s, noSASL); err == nil {
		t.Error("no SASL: connected")
	}
	noClientCert := user
	noClientCert.TLS.CertFile, noClientCert.TLS.KeyFile = "", ""
	if err := connect(t, s, noClientCert); err == nil {
		t.Error("no client certificate: connected")
	}
	noTLS := user
	noTLS.TLS = kafkasec.TLS{}
	if err := connect(t, s, noTLS); err == nil {
		t.Error("no TLS: connected")
	}
	systemCAs := user
	systemCAs.TLS.CAFile = ""
	if err := connect(t, s, systemCAs); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("the system's authorities, which did not sign the broker's certificate: %v", err)
	}
	// The broker's certificate names localhost and 127.0.0.1.
	named := user
	named.TLS.ServerName = "localhost"
	if err := connect(t, s, named); err != nil {
		t.Errorf("KAFKA_TLS_SERVER_NAME=localhost: %v", err)
	}
	misnamed := user
	misnamed.TLS.ServerName = "not-the-broker.example"
	if err := connect(t, s, misnamed); err == nil || !strings.Contains(err.Error(), "not-the-broker.example") {
		t.Errorf("KAFKA_TLS_SERVER_NAME=not-the-broker.example: %v", err)
	}
}
