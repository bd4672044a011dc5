package ids_test

import (
	"fmt"

	"github.com/bookscatalog/catalog/ids"
)

// ExampleFromName derives a command's message id from what a client sent
// with it: a retry with the same idempotency key gets the same id, so the
// runtime recognises it as the command already handled instead of
// handling it twice.
func ExampleFromName() {
	first := ids.FromName("accounts", "alice", "Idempotency-Key: 7f3e")
	retry := ids.FromName("accounts", "alice", "Idempotency-Key: 7f3e")
	other := ids.FromName("accounts", "bob", "Idempotency-Key: 7f3e")
	fmt.Println(first) // the same in every release: ids outlive upgrades
	fmt.Println(first == retry, first == other)
	// The parts are joined with a NUL byte, so moving a boundary between
	// them is another name.
	fmt.Println(ids.FromName("ab", "c") == ids.FromName("a", "bc"))
	// Output:
	// f4b1ee71-f0bf-53cb-93c5-f1b58bd99461
	// true false
	// false
}

// ExampleNew makes a random id, for a new aggregate or a message nobody
// will retry.
func ExampleNew() {
	id := ids.New()
	fmt.Println(len(id), id[14:15]) // 36 characters, version 4
	// Output:
	// 36 4
}
