package config

import (
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/kafkasec"
)

// The Kafka security settings are read with the rest, from variables or
// flags, and only make sense with KAFKA_BROKERS.
func TestKafkaSecurity(t *testing.T) {
	vars := map[string]string{
		"KAFKA_BROKERS": "k1:9093", "KAFKA_TLS_CA_FILE": "/ca.pem",
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "catalog", "KAFKA_SASL_PASSWORD": "pw",
	}
	getenv := func(k string) string { return vars[k] }
	c, err := Load([]string{"-kafka-tls-server-name", "kafka.internal"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := kafkasec.Config{
		TLS:  kafkasec.TLS{Enabled: true, CAFile: "/ca.pem", ServerName: "kafka.internal"},
		SASL: kafkasec.SASL{Mechanism: kafkasec.ScramSHA512, Username: "catalog", Password: "pw"},
	}
	if c.Kafka != want {
		t.Errorf("Kafka = %+v, want %+v", c.Kafka, want)
	}
	if c, err := Load(nil, func(string) string { return "" }); err != nil || c.Kafka.Enabled() {
		t.Errorf("by default: %+v, %v; want plain text", c.Kafka, err)
	}

	vars["KAFKA_SASL_PASSWORD"] = ""
	if _, err := Load(nil, getenv); err == nil || !strings.Contains(err.Error(), "needs KAFKA_SASL_PASSWORD") {
		t.Errorf("no password: %v", err)
	}
	vars["KAFKA_SASL_PASSWORD"], vars["KAFKA_BROKERS"] = "pw", ""
	if _, err := Load(nil, getenv); err == nil || !strings.Contains(err.Error(), "the embedded broker uses its own credentials") {
		t.Errorf("security settings without KAFKA_BROKERS: %v", err)
	}
}
