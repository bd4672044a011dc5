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
		{"catalog.booksbyauthor.BookLink", 0xc221d093935557e6, `{"fields":[{"name":"authorCode","type":"string"},{"name":"title","type":"string"},{"default":0,"name":"authorPosition","type":"long"}],"name":"BookLink","namespace":"catalog.booksbyauthor","type":"record"}`},
		{"catalog.booksbyauthor.Link", 0x67c827a51bb8c8ae, `{"fields":[{"name":"op","type":"string"},{"name":"bookId","type":"string"},{"name":"title","type":"string"},{"default":0,"name":"authorPosition","type":"long"}],"name":"Link","namespace":"catalog.booksbyauthor","type":"record"}`},
		{"catalog.booksbyauthor.View", 0xb6738e4f960104ce, `{"fields":[{"default":null,"name":"author","type":["null",{"fields":[{"name":"code","type":"string"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"}],"name":"Author","type":"record"}]},{"name":"deleted","type":"boolean"},{"name":"books","type":{"type":"map","values":"string"}},{"default":0,"name":"deletedAt","type":"long"},{"default":{},"name":"positions","type":{"type":"map","values":"long"}}],"name":"View","namespace":"catalog.booksbyauthor","type":"record"}`},
	} {
		s := got[want.name]
		if s == nil || s.Name() != want.name || s.Fingerprint() != want.fp || s.JSON() != want.json {
			t.Errorf("%s changed:\n got %v %s\nwant %016x %s", want.name, s, s.JSON(), want.fp, want.json)
		}
	}
}

// The read model's records written before positions (the first versions
// of TestRuntimeSchemasUnchanged) are still read, with position 0
// (unknown) and no deletion position.
func TestReadModelRecordsBeforePositions(t *testing.T) {
	ctx := context.Background()
	reg := schemaregistry.NewMemory()
	type Author struct {
		Code      string `avro:"code"`
		FirstName string `avro:"firstName"`
		LastName  string `avro:"lastName"`
	}
	type View struct {
		Author  *Author           `avro:"author"`
		Deleted bool              `avro:"deleted"`
		Books   map[string]string `avro:"books"`
	}
	type Link struct {
		Op     string `avro:"op"`
		BookID string `avro:"bookId"`
		Title  string `avro:"title"`
	}
	type BookLink struct {
		AuthorCode string `avro:"authorCode"`
		Title      string `avro:"title"`
	}
	ns := "catalog.booksbyauthor"
	oldView, oldLink, oldBookLink := must(avro.NewValue[View](reg, ns)), must(avro.NewValue[Link](reg, ns)), must(avro.NewValue[BookLink](reg, ns))
	for fp, v := range map[uint64]avro.Registrant{0x2b7bdf82bacb8db9: oldView, 0x2ad5dcf50cebdd51: oldLink, 0x3ccbeeaba18caa6b: oldBookLink} {
		if got := v.Schemas()[0].Fingerprint(); got != fp {
			t.Fatalf("old schema %s has fingerprint %016x, want %016x", v.Schemas()[0].Name(), got, fp)
		}
	}
	if err := avro.Register(ctx, oldView, oldLink, oldBookLink); err != nil {
		t.Fatal(err)
	}
	view, link, bookLink := must(avro.NewValue[booksbyauthor.View](reg, ns)), must(avro.NewValue[booksbyauthor.Link](reg, ns)), must(avro.NewValue[booksbyauthor.BookLink](reg, ns))
	if err := avro.Register(ctx, view, link, bookLink); err != nil {
		t.Fatalf("the new versions are refused: %v", err)
	}

	b, _, err := oldView.Encode(View{Deleted: true, Books: map[string]string{"b1": "Emma"}})
	if err != nil {
		t.Fatal(err)
	}
	gotView, err := view.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !gotView.Deleted || gotView.Books["b1"] != "Emma" || gotView.DeletedAt != 0 || len(gotView.Positions) != 0 {
		t.Errorf("old view read as %+v", gotView)
	}
	if b, _, err = oldLink.Encode(Link{Op: "link", BookID: "b1", Title: "Emma"}); err != nil {
		t.Fatal(err)
	}
	if got, err := link.Decode(b); err != nil || got != (booksbyauthor.Link{Op: "link", BookID: "b1", Title: "Emma"}) {
		t.Errorf("old link read as %+v, %v", got, err)
	}
	if b, _, err = oldBookLink.Encode(BookLink{AuthorCode: "austen", Title: "Emma"}); err != nil {
		t.Fatal(err)
	}
	if got, err := bookLink.Decode(b); err != nil || got != (booksbyauthor.BookLink{AuthorCode: "austen", Title: "Emma"}) {
		t.Errorf("old book link read as %+v, %v", got, err)
	}
}
