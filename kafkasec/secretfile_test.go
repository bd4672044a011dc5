package kafkasec_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/kafkasec"
)

// A *_FILE that names a FIFO (or a device) is refused at once, naming
// the setting: reading it used to block the start for good, with nothing
// logged (or, for /dev/zero, read until memory ran out).
func TestSecretFileThatIsNotAFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "password")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	for _, path := range []string{fifo, "/dev/zero"} {
		env := map[string]string{
			"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD_FILE": path,
		}
		done := make(chan error, 1)
		go func() {
			_, err := kafkasec.FromEnv(func(k string) string { return env[k] })
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.HasPrefix(err.Error(), "KAFKA_SASL_PASSWORD_FILE:") {
				t.Errorf("%s: error %v, want one naming KAFKA_SASL_PASSWORD_FILE", path, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("KAFKA_SASL_PASSWORD_FILE=%s: no answer after 3s", path)
		}
	}
}
