package pebblestore_test

import (
	"fmt"
	"os"

	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/pebblestore"
)

// Example writes a batch, closes the store and opens it again: data and
// changelog offsets survive together, so a restarted stage reads its
// changelogs only from where the store stops instead of from the start.
func Example() {
	dir, err := os.MkdirTemp("", "pebblestore-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	s, err := pebblestore.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	var b store.Batch
	b.Put("v/alice", []byte(`{"balance":70}`))
	b.SetOffset("bank.accounts.changelog", 0, 42)
	if err := s.Apply(&b); err != nil {
		fmt.Println(err)
		return
	}
	if err := s.Close(); err != nil {
		fmt.Println(err)
		return
	}

	s, err = pebblestore.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	v, _, _ := s.Get("v/alice")
	next, _, _ := s.Offset("bank.accounts.changelog", 0)
	fmt.Println(string(v), next)
	// Output:
	// {"balance":70} 42
}
