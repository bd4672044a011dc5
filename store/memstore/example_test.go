package memstore_test

import (
	"fmt"

	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/memstore"
)

// Example applies a batch, as a stage does with each transaction: the
// data and the next changelog offset to read change together, so that a
// restart resumes the changelog exactly where the data stops.
func Example() {
	s := memstore.New()
	defer s.Close()

	var b store.Batch
	b.Put("v/alice", []byte(`{"balance":70}`))
	b.Put("v/bob", []byte(`{"balance":5}`))
	b.SetOffset("bank.accounts.changelog", 0, 2)
	if err := s.Apply(&b); err != nil {
		fmt.Println(err)
		return
	}

	v, ok, _ := s.Get("v/alice")
	fmt.Println(string(v), ok)
	next, ok, _ := s.Offset("bank.accounts.changelog", 0)
	fmt.Println(next, ok)
	// Keys are ordered bytewise; Scan resumes after a key, as pages do.
	_ = s.Scan("v/", "v/alice", func(key string, value []byte) bool {
		fmt.Println(key, string(value))
		return true
	})
	// Output:
	// {"balance":70} true
	// 2 true
	// v/bob {"balance":5}
}
