package kafkasec_test

// The settings against a broker that requires TLS with client certificates
// and SASL: kfake, or, in CI, Apache Kafka with a SASL_SSL listener
// (kafkatest.SecuredBroker).

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/bookscatalog/catalog/kafkasec"
	"github.com/bookscatalog/catalog/kafkatest"
)

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
		if err := s.Connect(t, sec); err != nil {
			t.Errorf("%s as %s: %v", sec.SASL.Mechanism, sec.SASL.Username, err)
		}
	}
}

// Each part of the settings is applied: leave one out or get it wrong, and
// the broker (or the client, checking the broker) refuses.
func TestRefusals(t *testing.T) {
	s := kafkatest.SecuredBroker(t)
	user := s.NewUser(t, "scram", kafkasec.ScramSHA512)
	if err := s.Connect(t, user); err != nil {
		t.Fatalf("the right settings: %v", err)
	}
	wrongPassword := user
	wrongPassword.SASL.Password += "x"
	if err := s.Connect(t, wrongPassword); !authFailed(err) {
		t.Errorf("a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	otherMechanism := user
	otherMechanism.SASL.Mechanism = kafkasec.ScramSHA256 // the user has SHA-512 credentials only
	if err := s.Connect(t, otherMechanism); !authFailed(err) {
		t.Errorf("a mechanism the user has no credentials for: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	noSASL := user
	noSASL.SASL = kafkasec.SASL{}
	if err := s.Connect(t, noSASL); err == nil {
		t.Error("no SASL: connected")
	}
	noClientCert := user
	noClientCert.TLS.CertFile, noClientCert.TLS.KeyFile = "", ""
	if err := s.Connect(t, noClientCert); err == nil {
		t.Error("no client certificate: connected")
	}
	noTLS := user
	noTLS.TLS = kafkasec.TLS{}
	if err := s.Connect(t, noTLS); err == nil {
		t.Error("no TLS: connected")
	}
	systemCAs := user
	systemCAs.TLS.CAFile = ""
	if err := s.Connect(t, systemCAs); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("the system's authorities, which did not sign the broker's certificate: %v", err)
	}
	// The broker's certificate names localhost and 127.0.0.1.
	named := user
	named.TLS.ServerName = "localhost"
	if err := s.Connect(t, named); err != nil {
		t.Errorf("KAFKA_TLS_SERVER_NAME=localhost: %v", err)
	}
	misnamed := user
	misnamed.TLS.ServerName = "not-the-broker.example"
	if err := s.Connect(t, misnamed); err == nil || !strings.Contains(err.Error(), "not-the-broker.example") {
		t.Errorf("KAFKA_TLS_SERVER_NAME=not-the-broker.example: %v", err)
	}
}
