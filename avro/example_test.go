package avro_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// The events of a bank account, as a domain package declares them.
type accountEvent interface{ isAccountEvent() }

type Deposited struct {
	Amount int64 `avro:"amount"`
	// Currency was added after the first release: a default lets the
	// new schema read the records written without it.
	Currency string `avro:"currency,default=EUR"`
}

type Withdrawn struct {
	Amount int64 `avro:"amount"`
}

func (Deposited) isAccountEvent() {}
func (Withdrawn) isAccountEvent() {}

// accountEvents is the domain's own list of its events.
func accountEvents() []accountEvent { return []accountEvent{Deposited{}, Withdrawn{}} }

// writtenByTheReleaseBefore returns a Deposited event as the release before
// wrote it, when Deposited had no currency.
func writtenByTheReleaseBefore(ctx context.Context, reg avro.Registry) ([]byte, error) {
	type Deposited struct {
		Amount int64 `avro:"amount"`
	}
	events, err := avro.NewUnion[any](reg, "bank.account", avro.Of[Deposited]())
	if err != nil {
		return nil, err
	}
	if err := avro.Register(ctx, events); err != nil {
		return nil, err
	}
	b, _, err := events.Encode(Deposited{Amount: 100})
	return b, err
}

// ExampleNewUnion builds the codec of an aggregate's events, registers its
// schemas at start-up, and reads a record written by the release before,
// whose Deposited had no currency: the reader finds the writer's schema in
// the registry by the fingerprint in the frame.
func ExampleNewUnion() {
	ctx := context.Background()
	reg := schemaregistry.NewMemory() // on Kafka: schemaregistry.New

	record, err := writtenByTheReleaseBefore(ctx, reg)
	if err != nil {
		fmt.Println(err)
		return
	}

	// Today's codec.
	events, err := avro.NewUnion[accountEvent](reg, "bank.account", avro.Of[Deposited](), avro.Of[Withdrawn]())
	if err != nil {
		fmt.Println(err)
		return
	}
	// A type added to the domain but not to the codec is an error now,
	// not a record refused in production.
	if err := events.CheckMembers(accountEvents()); err != nil {
		fmt.Println(err)
		return
	}
	// Encode before Register is refused: every record must be readable
	// by its fingerprint.
	_, _, err = events.Encode(Withdrawn{Amount: 5})
	fmt.Println(errors.Is(err, avro.ErrNotRegistered))
	// Register checks each schema against those registered for the same
	// record (here the old Deposited): the added field has a default.
	if err := avro.Register(ctx, events); err != nil {
		fmt.Println(err)
		return
	}

	ev, err := events.Decode(record)
	fmt.Printf("%#v %v\n", ev, err)
	b, typ, _ := events.Encode(Withdrawn{Amount: 5})
	ev, err = events.Decode(b)
	fmt.Printf("%s %#v %v\n", typ, ev, err)
	// Output:
	// true
	// avro_test.Deposited{Amount:100, Currency:"EUR"} <nil>
	// Withdrawn avro_test.Withdrawn{Amount:5} <nil>
}

// ExampleCheckCompatible shows the refusal a service gets at start-up
// when a field was added without a default: records written before could
// not be read.
func ExampleCheckCompatible() {
	type Withdrawn struct {
		Amount int64 `avro:"amount"`
	}
	reg := schemaregistry.NewMemory()
	old, _ := avro.NewValue[Withdrawn](reg, "bank.account")
	{
		type Withdrawn struct {
			Amount int64  `avro:"amount"`
			Reason string `avro:"reason"` // no default
		}
		current, _ := avro.NewValue[Withdrawn](reg, "bank.account")
		err := avro.CheckCompatible([]*avro.Schema{old.Schema()}, current.Schema())
		if ie, ok := errors.AsType[*avro.IncompatibleError](err); ok {
			fmt.Printf("%s, field %s: %s\n", ie.Type, ie.Field, ie.Problem)
		}
	}
	// Output:
	// bank.account.Withdrawn, field reason: field added without a default (records written before it have no value for it)
}
