package catalogavro_test

import (
	"reflect"
	"testing"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
)

func TestSchemaNamesAndJSON(t *testing.T) {
	c, _ := registered(t)
	want := map[string]string{
		"catalog.author.State":         `{"fields":[{"name":"code","type":"string"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"},{"name":"version","type":"long"}],"name":"State","namespace":"catalog.author","type":"record"}`,
		"catalog.author.AuthorCreated": `{"fields":[{"name":"code","type":"string"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"}],"name":"AuthorCreated","namespace":"catalog.author","type":"record"}`,
		"catalog.book.State":           `{"fields":[{"name":"id","type":"string"},{"name":"title","type":"string"},{"name":"authorCode","type":"string"},{"default":0,"name":"authorPosition","type":"long"},{"name":"chapters","type":{"items":{"fields":[{"name":"id","type":"long"},{"name":"title","type":"string"},{"name":"content","type":"string"}],"name":"Chapter","type":"record"},"type":"array"}},{"name":"nextChapterId","type":"long"},{"name":"version","type":"long"}],"name":"State","namespace":"catalog.book","type":"record"}`,
	}
	got := map[string]string{}
	for _, r := range aggregates(c) {
		for _, s := range r.Schemas() {
			got[s.Name()] = s.JSON()
		}
	}
	if want := 2 + len(author.Commands()) + len(author.Events()) + len(book.Commands()) + len(book.Events()); len(got) != want {
		t.Errorf("%d schemas, want %d: %v", len(got), want, got)
	}
	for name, js := range want {
		if got[name] != js {
			t.Errorf("schema %s:\n got %s\nwant %s", name, got[name], js)
		}
	}
}

// Every command and event type the domain packages declare goes through its
// Avro codec and back: its zero value, and the samples frozen for it.
func TestRoundTripDeclared(t *testing.T) {
	c, _ := registered(t)
	smp := samples()
	for _, v := range author.Commands() {
		roundTrip(t, c.AuthorCommands, v, "catalog.author.", smp)
	}
	for _, v := range author.Events() {
		roundTrip(t, c.AuthorEvents, v, "catalog.author.", smp)
	}
	for _, v := range book.Commands() {
		roundTrip(t, c.BookCommands, v, "catalog.book.", smp)
	}
	for _, v := range book.Events() {
		roundTrip(t, c.BookEvents, v, "catalog.book.", smp)
	}
}

// roundTrip encodes zero (a zero value of a declared type) and the samples
// of its record with c, and checks that they decode as they were.
func roundTrip[T any](t *testing.T, c es.Codec[T], zero T, namespace string, smp map[string][]any) {
	t.Helper()
	name := reflect.TypeOf(zero).Name()
	values := []T{zero}
	for _, s := range smp[namespace+name] {
		values = append(values, s.(T))
	}
	if len(values) < 2 {
		t.Errorf("no samples of %s%s", namespace, name)
	}
	for _, v := range values {
		b, typ, err := c.Encode(v)
		if err != nil {
			t.Errorf("encode %#v: %v", v, err)
			continue
		}
		got, err := c.Decode(b)
		if err != nil {
			t.Errorf("decode %s: %v", name, err)
			continue
		}
		if typ != name || !reflect.DeepEqual(got, v) {
			t.Errorf("round trip of %s (type %q):\n got %#v\nwant %#v", name, typ, got, v)
		}
	}
}
