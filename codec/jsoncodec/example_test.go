package jsoncodec_test

import (
	"fmt"

	"github.com/bookscatalog/catalog/codec/jsoncodec"
)

// The events of an account: an interface, and a struct per event.
type event interface{ isEvent() }

type Deposited struct {
	Amount int64 `json:"amount"`
}

type Withdrawn struct {
	Amount int64  `json:"amount"`
	Reason string `json:"reason,omitempty"`
}

func (Deposited) isEvent() {}
func (Withdrawn) isEvent() {}

// ExampleNewUnion encodes the events of an account as flat JSON objects
// tagged with their type, and decodes them back into the interface.
func ExampleNewUnion() {
	events := jsoncodec.NewUnion[event](Deposited{}, Withdrawn{})

	b, typ, err := events.Encode(Withdrawn{Amount: 30, Reason: "rent"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(typ, string(b))

	// A reader ignores members it does not know, so that a newer
	// writer may add fields.
	e, err := events.Decode([]byte(`{"type":"Deposited","amount":100,"currency":"EUR"}`))
	fmt.Printf("%#v %v\n", e, err)

	_, err = events.Decode([]byte(`{"type":"Closed"}`))
	fmt.Println(err, "- known:", events.Names())
	// Output:
	// Withdrawn {"type":"Withdrawn","amount":30,"reason":"rent"}
	// jsoncodec_test.Deposited{Amount:100} <nil>
	// decode: unknown type "Closed" - known: [Deposited Withdrawn]
}

// ExampleValue encodes one struct type, such as an aggregate's state.
func ExampleValue() {
	type balance struct {
		Amount  int64 `json:"amount"`
		Version int64 `json:"version"`
	}
	state := jsoncodec.Value[balance]{Name: "Balance"}
	b, typ, _ := state.Encode(balance{Amount: 70, Version: 2})
	fmt.Println(typ, string(b))
	v, err := state.Decode(b)
	fmt.Println(v, err)
	// Output:
	// Balance {"amount":70,"version":2}
	// {70 2} <nil>
}
