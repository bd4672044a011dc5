package avro_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/bookscatalog/catalog/internal/avro"
	"github.com/bookscatalog/catalog/internal/es"
	"github.com/bookscatalog/catalog/internal/eskafka"
	"github.com/bookscatalog/catalog/internal/schemaregistry"
)

// The runtime's outcome (results topic) is an Avro record too; its events
// and state are the frames of their own codecs, kept as bytes.
func TestOutcome(t *testing.T) {
	reg := schemaregistry.NewMemory()
	v, err := avro.NewValue[eskafka.Outcome](reg, "catalog.author")
	if err != nil {
		t.Fatal(err)
	}
	if err := avro.Register(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	var c es.Codec[eskafka.Outcome] = v
	for _, o := range []eskafka.Outcome{
		{MsgID: "m1", Key: "jane-austen", Status: eskafka.StatusAccepted, Version: 2,
			Events: []eskafka.EncodedEvent{{Type: "AuthorUpdated", Data: []byte{0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9}}},
			State:  []byte{0xc3, 0x01, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{MsgID: "m2", Key: "x", Status: eskafka.StatusRejected, Version: 0, Events: []eskafka.EncodedEvent{},
			Rejection: &es.Rejection{Code: "invalid", Field: "firstName", Message: "must not be blank"}},
	} {
		b, typ, err := c.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if typ != "Outcome" || !reflect.DeepEqual(got, o) {
			t.Errorf("round trip (%s):\n got %#v\nwant %#v", typ, got, o)
		}
		if o.State == nil && got.State != nil {
			t.Error("a missing state came back non-nil")
		}
	}
	t.Log(v.Schema().JSON())
}
