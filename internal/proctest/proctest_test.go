package proctest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if got := Tail(path, 10); !strings.HasPrefix(got, "(cannot read") {
		t.Fatalf("missing file: %q", got)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Tail(path, 10); got != "(no output)" {
		t.Fatalf("empty file: %q", got)
	}
	if err := os.WriteFile(path, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Tail(path, 100); got != "one\ntwo\nthree\n" {
		t.Fatalf("short file: %q", got)
	}
	if got := Tail(path, 8); got != "[... earlier output cut ...]\nthree\n" {
		t.Fatalf("cut at a line start: %q", got)
	}
}

func TestFreePort(t *testing.T) {
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("port %d", p)
	}
}

// Ports handed out are never handed out again, whatever the kernel gives
// back after a close.
func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
