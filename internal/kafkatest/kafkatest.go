// Package kafkatest gives tests a Kafka cluster: the real one named by the
// KAFKA_BROKERS environment variable when set (CI runs the suite against
// Apache Kafka this way), else a fresh in-process kfake broker.
package kafkatest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/internal/embedded"
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
	b, err := embedded.Start("127.0.0.1:0", "")
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
