package schemaregistry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/embedded"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// Example runs two instances of a service on one broker: the first
// registers a schema at start-up, and the second, already running, finds
// it by its fingerprint (as a reader does with the fingerprint in a
// record's frame) because a look-up of a fingerprint it does not know
// catches up on the topic first.
func Example() {
	broker, err := embedded.Start("127.0.0.1:0", "", embedded.Plaintext())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := []string{broker.Addr()}
	quiet := schemaregistry.WithLogger(slog.New(slog.DiscardHandler))

	first, err := schemaregistry.New(ctx, brokers, "bank._schemas", quiet)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer first.Close()
	second, err := schemaregistry.New(ctx, brokers, "bank._schemas", quiet)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer second.Close()

	schema := `{"type":"record","name":"Deposited","namespace":"bank.account","fields":[{"name":"amount","type":"long"}]}`
	fp, err := first.Register(ctx, schema)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The key is the schema's CRC-64-AVRO fingerprint, which anybody
	// computes from the schema alone.
	got, err := second.Lookup(ctx, fp)
	fmt.Println(avro.FormatFingerprint(fp), got == schema, err)

	// A fingerprint nobody registered is an error, never a guess.
	_, err = second.Lookup(ctx, fp+1)
	fmt.Println(errors.Is(err, avro.ErrUnknownSchema))
	// Output:
	// b875183436c351d3 true <nil>
	// true
}

// ExampleMemory gives the codecs of a test a registry without Kafka, with
// the same rules.
func ExampleMemory() {
	reg := schemaregistry.NewMemory()
	type Deposited struct {
		Amount int64 `avro:"amount"`
	}
	codec, err := avro.NewValue[Deposited](reg, "bank.account")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := avro.Register(context.Background(), codec); err != nil {
		fmt.Println(err)
		return
	}
	b, _, _ := codec.Encode(Deposited{Amount: 100})
	v, err := codec.Decode(b)
	fmt.Println(v, err)
	// Output:
	// {100} <nil>
}
