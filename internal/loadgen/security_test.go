package loadgen

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/embedded"
	"github.com/bookscatalog/catalog/kafkasec"
)

// -mode kafka without -brokers drives the embedded broker, with the
// credentials of the service's DATA_DIR; -brokers or the KAFKA_SASL_*
// settings mean another broker, and DATA_DIR is not read.
func TestParseArgsKafkaSecurity(t *testing.T) {
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, embedded.PasswordFile), []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	embeddedCreds := kafkasec.SASL{Mechanism: embedded.Mechanism, Username: embedded.Username, Password: "pw"}
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	for _, tc := range []struct {
		name string
		args []string
		vars map[string]string
		want kafkasec.Config
	}{
		{"-data-dir", []string{"-mode", "kafka", "-data-dir", dataDir}, nil, kafkasec.Config{SASL: embeddedCreds}},
		{"DATA_DIR", []string{"-mode", "kafka"}, map[string]string{"DATA_DIR": dataDir}, kafkasec.Config{SASL: embeddedCreds}},
		{"-brokers: another broker", []string{"-mode", "kafka", "-brokers", "h:9092", "-data-dir", dataDir}, nil, kafkasec.Config{}},
		{"KAFKA_SASL_*", []string{"-mode", "kafka", "-brokers", "h:9092"},
			map[string]string{"DATA_DIR": dataDir, "KAFKA_TLS": "true", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "lg", "KAFKA_SASL_PASSWORD": "s"},
			kafkasec.Config{TLS: kafkasec.TLS{Enabled: true}, SASL: kafkasec.SASL{Mechanism: kafkasec.ScramSHA256, Username: "lg", Password: "s"}}},
		{"the HTTP modes need none", []string{"-mode", "http", "-data-dir", t.TempDir()}, nil, kafkasec.Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseArgs(tc.args, env(tc.vars), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if o.Kafka != tc.want {
				t.Errorf("Kafka = %+v, want %+v", o.Kafka, tc.want)
			}
		})
	}

	_, err := parseArgs([]string{"-mode", "kafka", "-data-dir", t.TempDir()}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "credentials are not in -data-dir") {
		t.Errorf("no credentials in -data-dir: %v", err)
	}
	_, err = parseArgs([]string{"-mode", "kafka", "-brokers", "h:9092"}, env(map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "needs KAFKA_SASL_USERNAME") {
		t.Errorf("an incomplete KAFKA_SASL_* setting: %v", err)
	}
}
