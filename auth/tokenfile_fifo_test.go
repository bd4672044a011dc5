package auth_test

import (
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/auth"
)

// AUTH_TOKENS_FILE naming a FIFO is refused at once: opening it used to
// block the start for good.
func TestTokenFileThatIsAFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "tokens")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { _, err := auth.LoadTokenFile(fifo, slog.Default()); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("error %v, want one saying the token file is not a regular file", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("AUTH_TOKENS_FILE naming a FIFO: no answer after 3s")
	}
}
