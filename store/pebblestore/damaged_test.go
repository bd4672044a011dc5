package pebblestore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/pebblestore"
)

// closedStore writes keys k00000… to a store in a new directory and closes
// it (which flushes them to a table), returning the directory and the path
// of its one table.
func closedStore(t *testing.T) (dir, table string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "store")
	s, err := pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b store.Batch
	for i := range 1000 {
		b.Put(fmt.Sprintf("k%05d", i), []byte(strings.Repeat("v", 100)))
	}
	b.SetOffset("cl", 0, 1000)
	if err := s.Apply(&b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) != 1 {
		t.Fatalf("want one table in %s, got %v", dir, tables)
	}
	return dir, tables[0]
}

// A table overwritten with garbage: Pebble's default reaction is to stop
// the process from whichever goroutine meets it (a background one, at
// open), and every restart would do it again. The store is refused at
// open instead, with an error naming it and what to do.
func TestGarbageTableRefusedAtOpen(t *testing.T) {
	dir, table := closedStore(t)
	fi, err := os.Stat(table)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, fi.Size())
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	if err := os.WriteFile(table, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := pebblestore.Open(dir)
	if err == nil {
		_, _, gerr := s.Get("k00001")
		s.Close()
		t.Fatalf("a store with a garbage table opened (get: %v)", gerr)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "delete") {
		t.Fatalf("the error names neither the store nor what to do: %v", err)
	}
}

// A damaged data block is met only by a read of it: the read fails, and
// the process goes on (Pebble's default panics in the reader's goroutine:
// a command handler's, which would take it for the command's fault).
func TestDamagedBlockIsAReadError(t *testing.T) {
	dir, table := closedStore(t)
	f, err := os.OpenFile(table, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The first data block starts the file.
	if _, err := f.WriteAt([]byte("garbage!"), 64); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, err := pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Get("k00000"); err == nil {
		t.Fatal("a read of a damaged block succeeded")
	}
	if err := s.Scan("k", "", func(string, []byte) bool { return true }); err == nil {
		t.Fatal("a scan over a damaged block succeeded")
	}
}

// Two instances on one DATA_DIR: the second is told so, not only
// "resource temporarily unavailable".
func TestStoreInUseNamesAnotherInstance(t *testing.T) {
	dir := t.TempDir()
	s, err := pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := pebblestore.Open(dir); err == nil || !strings.Contains(err.Error(), "another instance") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second open: %v", err)
	}
}
