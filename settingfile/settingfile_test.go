package settingfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/settingfile"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "secret")
	if err := os.WriteFile(ok, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(ok, link); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, settingfile.MaxBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, want, err string
	}{
		{ok, "s3cret", ""},
		{link, "s3cret", ""},
		{big, "", "more than"},
		{fifo, "", "not a regular file"},
		{"/dev/zero", "", "not a regular file"},
		{dir, "", "not a regular file"},
		{filepath.Join(dir, "missing"), "", "no such file"},
	} {
		done := make(chan struct{})
		var b []byte
		var err error
		go func() { b, err = settingfile.Read("SOME_FILE", c.path); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no answer after 5s", c.path)
		}
		switch {
		case c.err == "" && (err != nil || string(b) != c.want):
			t.Errorf("%s: %q, %v; want %q", c.path, b, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "SOME_FILE: ")):
			t.Errorf("%s: error %v, want one naming SOME_FILE and saying %q", c.path, err, c.err)
		}
	}
}
