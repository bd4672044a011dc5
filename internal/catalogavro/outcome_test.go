package catalogavro_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/domain/booksbyauthor"
	"github.com/bookscatalog/catalog/schemaregistry"
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

// The outcome and read-model records are registered too, though not frozen
// under testdata: their schemas (JSON and fingerprint) are those the
// registry already holds. A deliberate change is a new version: update the
// pins then, with a default for every added field.
func TestRuntimeSchemasUnchanged(t *testing.T) {
	reg := schemaregistry.NewMemory()
	got := map[string]*avro.Schema{
		"catalog.runtime.Outcome":        must(avro.NewValue[eskafka.Outcome](reg, "catalog.runtime")).Schema(),
		"catalog.booksbyauthor.BookLink": must(avro.NewValue[booksbyauthor.BookLink](reg, "catalog.booksbyauthor")).Schema(),
		"catalog.booksbyauthor.Link":     must(avro.NewValue[booksbyauthor.Link](reg, "catalog.booksbyauthor")).Schema(),
		"catalog.booksbyauthor.View":     must(avro.NewValue[booksbyauthor.View](reg, "catalog.booksbyauthor")).Schema(),
	}
	for _, want := range []struct {
		name string
		fp   uint64
		json string
	}{
		{"catalog.runtime.Outcome", 0x8298712aa210dc25, `{"fields":[{"name":"msgId","type":"string"},{"name":"key","type":"string"},{"name":"status","type":"string"},{"name":"version","type":"long"},{"name":"events","type":{"items":{"fields":[{"name":"type","type":"string"},{"name":"data","type":"bytes"}],"name":"EncodedEvent","type":"record"},"type":"array"}},{"name":"state","type":"bytes"},{"default":null,"name":"error","type":["null",{"fields":[{"name":"code","type":"string"},{"name":"field","type":"string"},{"name":"message","type":"string"}],"name":"Rejection","type":"record"}]}],"name":"Outcome","namespace":"catalog.runtime","type":"record"}`},
		{"catalog.booksbyauthor.BookLink", 0x3ccbeeaba18caa6b, `{"fields":[{"name":"authorCode","type":"string"},{"name":"title","type":"string"}],"name":"BookLink","namespace":"catalog.booksbyauthor","type":"record"}`},
		{"catalog.booksbyauthor.Link", 0x2ad5dcf50cebdd51, `{"fields":[{"name":"op","type":"string"},{"name":"bookId","type":"string"},{"name":"title","type":"string"}],"name":"Link","namespace":"catalog.booksbyauthor","type":"record"}`},
		{"catalog.booksbyauthor.View", 0x2b7bdf82bacb8db9, `{"fields":[{"default":null,"name":"author","type":["null",{"fields":[{"name":"code","type":"string"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"}],"name":"Author","type":"record"}]},{"name":"deleted","type":"boolean"},{"name":"books","type":{"type":"map","values":"string"}}],"name":"View","namespace":"catalog.booksbyauthor","type":"record"}`},
	} {
		s := got[want.name]
		if s == nil || s.Name() != want.name || s.Fingerprint() != want.fp || s.JSON() != want.json {
			t.Errorf("%s changed:\n got %v %s\nwant %016x %s", want.name, s, s.JSON(), want.fp, want.json)
		}
	}
}
