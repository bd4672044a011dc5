package schemacli_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/embedded"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// Without KAFKA_BROKERS, the commands use the embedded broker with the
// credentials the service keeps in DATA_DIR.
func TestEmbeddedBrokerCredentials(t *testing.T) {
	dataDir := t.TempDir()
	b, err := embedded.StartIn("127.0.0.1:0", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	secOpts, err := b.Client().ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := schemaregistry.New(t.Context(), []string{b.Addr()}, "svc.schemas", schemaregistry.WithClientOpts(secOpts...),
		schemaregistry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := reg.Register(t.Context(), authorCreated); err != nil {
		t.Fatal(err)
	}

	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	vars := map[string]string{"EMBEDDED_KAFKA_ADDR": b.Addr(), "SERVICE_NAME": "svc", "DATA_DIR": dataDir}
	out, stderr, err := run(t, env(vars), "list")
	if err != nil || !strings.Contains(out, "catalog.author.AuthorCreated") {
		t.Fatalf("list: %v\n%s%s", err, out, stderr)
	}
	// The flag does the same.
	out, stderr, err = run(t, env(map[string]string{"EMBEDDED_KAFKA_ADDR": b.Addr()}), "list", "-data-dir", dataDir, "-service-name", "svc")
	if err != nil || !strings.Contains(out, "catalog.author.AuthorCreated") {
		t.Fatalf("list -data-dir: %v\n%s%s", err, out, stderr)
	}

	vars["DATA_DIR"] = t.TempDir() // another service's, or none
	if _, _, err := run(t, env(vars), "list"); err == nil || !strings.Contains(err.Error(), "answers, but its credentials are not in DATA_DIR") {
		t.Errorf("list with a DATA_DIR without credentials: %v", err)
	}

	vars["DATA_DIR"], vars["KAFKA_SASL_MECHANISM"], vars["KAFKA_SASL_USERNAME"], vars["KAFKA_SASL_PASSWORD"] = dataDir, "PLAIN", "u", "p"
	if _, _, err := run(t, env(vars), "list"); err == nil || !strings.Contains(err.Error(), "are for KAFKA_BROKERS, which is not set") {
		t.Errorf("list with Kafka security settings and no KAFKA_BROKERS: %v", err)
	}
}
