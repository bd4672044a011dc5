package store_test

import (
	"fmt"

	"github.com/bookscatalog/catalog/store"
)

// ExampleBatch builds the batch of one transaction over two changelog
// records: the later change of a key wins when applied, and a changelog
// partition's offset only moves forward, so records handled out of order
// never make the store claim less than it holds.
func ExampleBatch() {
	var b store.Batch
	b.Put("alice", []byte("70"))
	b.SetOffset("bank.accounts.changelog", 0, 8)
	b.Delete("alice")
	b.SetOffset("bank.accounts.changelog", 0, 7)

	fmt.Println(len(b.Ops), b.Ops[len(b.Ops)-1].Delete)
	fmt.Println(b.Offsets[store.TopicPartition{Topic: "bank.accounts.changelog", Partition: 0}])
	fmt.Println(b.Empty(), new(store.Batch).Empty())
	// Output:
	// 2 true
	// 8
	// false true
}
