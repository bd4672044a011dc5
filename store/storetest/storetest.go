// Package storetest is a conformance suite that every store.Store
// implementation runs in its own tests.
package storetest

import (
	"fmt"
	"testing"

	"github.com/bookscatalog/catalog/store"
)

// Run checks the behaviour every store.Store must have. open returns a store
// over the same data each time it is called after the previous one was
// closed (reopen == nil means the implementation does not persist).
func Run(t *testing.T, open func(t *testing.T) store.Store, persists bool) {
	t.Run("GetApplyScan", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		if _, ok, err := s.Get("a"); ok || err != nil {
			t.Fatalf("Get on empty store = %v, %v", ok, err)
		}
		var b store.Batch
		for _, k := range []string{"s/b", "s/a", "s/c", "t/a", "r"} {
			b.Put(k, []byte("v-"+k))
		}
		b.SetOffset("topic", 3, 10)
		b.SetOffset("topic", 3, 7) // lower offsets never win
		if err := s.Apply(&b); err != nil {
			t.Fatal(err)
		}
		v, ok, err := s.Get("s/a")
		if err != nil || !ok || string(v) != "v-s/a" {
			t.Fatalf("Get(s/a) = %q, %v, %v", v, ok, err)
		}
		if o, ok, err := s.Offset("topic", 3); o != 10 || !ok || err != nil {
			t.Fatalf("Offset = %d, %v, %v; want 10", o, ok, err)
		}
		if _, ok, _ := s.Offset("topic", 4); ok {
			t.Fatal("Offset of an unrecorded partition reported ok")
		}
		if got := scan(t, s, "s/", ""); got != "s/a,s/b,s/c," {
			t.Fatalf("Scan(s/) = %s", got)
		}
		if got := scan(t, s, "s/", "s/a"); got != "s/b,s/c," {
			t.Fatalf("Scan(s/ after s/a) = %s", got)
		}
		var d store.Batch
		d.Delete("s/b")
		d.Put("s/c", []byte("new"))
		if err := s.Apply(&d); err != nil {
			t.Fatal(err)
		}
		if got := scan(t, s, "s/", ""); got != "s/a,s/c," {
			t.Fatalf("Scan after delete = %s", got)
		}
		if v, _, _ := s.Get("s/c"); string(v) != "new" {
			t.Fatalf("Get(s/c) = %q after overwrite", v)
		}
	})
	if !persists {
		return
	}
	t.Run("Reopen", func(t *testing.T) {
		s := open(t)
		var b store.Batch
		b.Put("k", []byte("v"))
		b.SetOffset("cl", 0, 42)
		if err := s.Apply(&b); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t)
		defer s.Close()
		if v, ok, _ := s.Get("k"); !ok || string(v) != "v" {
			t.Fatalf("after reopen Get = %q, %v", v, ok)
		}
		if o, ok, _ := s.Offset("cl", 0); !ok || o != 42 {
			t.Fatalf("after reopen Offset = %d, %v", o, ok)
		}
	})
}

func scan(t *testing.T, s store.Store, prefix, after string) string {
	t.Helper()
	out := ""
	if err := s.Scan(prefix, after, func(k string, _ []byte) bool { out += fmt.Sprint(k, ","); return true }); err != nil {
		t.Fatal(err)
	}
	return out
}
