package httpapi

import (
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TLS_CERT_FILE naming a FIFO is refused at once: tls.LoadX509KeyPair
// opened it and waited for a writer for good, so the service never
// started and said nothing.
func TestTLSCertFileThatIsAFIFO(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []string{cert, key} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { _, err := TLSConfig(cert, key, slog.Default()); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "TLS_CERT_FILE") || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("error %v, want one naming TLS_CERT_FILE, not a regular file", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("TLS_CERT_FILE naming a FIFO: no answer after 3s")
	}
}
