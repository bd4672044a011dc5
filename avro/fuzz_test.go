package avro_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	ta "github.com/twmb/avro"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// olderSchemas are older versions of two records of the test domain, so
// that fuzzed frames go through schema resolution too: an int widened to a
// long, a field since removed, and a nested record.
var olderSchemas = []struct {
	schema string
	value  map[string]any
}{
	{`{"type":"record","name":"PersonRemoved","namespace":"test.people","fields":[{"name":"code","type":"string"},{"name":"reason","type":"string"}]}`,
		map[string]any{"code": "ada", "reason": "moved"}},
	{`{"type":"record","name":"Shelf","namespace":"test.shelves","fields":[{"name":"title","type":"string"},{"name":"id","type":"string"},{"name":"owner","type":"string"},` +
		`{"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[{"name":"id","type":"int"},{"name":"title","type":"string"},{"name":"content","type":"string"}]}}},` +
		`{"name":"nextItemId","type":"long"},{"name":"version","type":"int"}]}`,
		map[string]any{"title": "T", "id": shelfID, "owner": "ada", "items": []any{map[string]any{"id": int32(1), "title": "One", "content": "…"}}, "nextItemId": int64(2), "version": int32(3)}},
}

// fuzzSeeds are frames of every type of the test domain (a zero and a
// filled value), frames of the older schemas, and a few broken ones.
func fuzzSeeds(f *testing.F) [][]byte {
	c, _ := registered(f)
	var seeds [][]byte
	add := func(b []byte, _ string, err error) {
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	add(c.person.Encode(Person{}))
	add(c.person.Encode(Person{Code: "ada", FirstName: "Ada", LastName: "Lovelace", Version: 2}))
	for _, v := range []PersonCommand{AddPerson{}, AddPerson{Code: "ada", FirstName: "Ada", LastName: "Lovelace"}, RenamePerson{Code: "ada", FirstName: "A."}, RemovePerson{Code: "ada"}} {
		add(c.personCommands.Encode(v))
	}
	for _, v := range []PersonEvent{PersonAdded{}, personAdded, PersonRenamed{Code: "ada", LastName: "King"}, PersonRemoved{Code: "ada"}} {
		add(c.personEvents.Encode(v))
	}
	add(c.shelf.Encode(Shelf{}))
	add(c.shelf.Encode(fullShelf))
	for _, v := range []ShelfCommand{AddShelf{ID: shelfID, Title: "T", Owner: "ada"}, PutItem{ID: shelfID, Title: "T", Content: "C"}, RemoveItem{ID: shelfID, ItemID: 2}} {
		add(c.shelfCommands.Encode(v))
	}
	for _, v := range []ShelfEvent{ShelfAdded{ID: shelfID}, ItemPut{ID: shelfID, ItemID: 1, Title: "T", Content: "C"}, ItemRemoved{ID: shelfID, ItemID: 1}} {
		add(c.shelfEvents.Encode(v))
	}
	for _, o := range olderSchemas {
		s, err := ta.Parse(o.schema)
		if err != nil {
			f.Fatal(err)
		}
		b, err := s.AppendSingleObject(nil, o.value)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return append(seeds, nil, []byte{0xc3}, []byte{0xc3, 0x01}, avro.AppendFrameHeader(nil, 0),
		append(avro.AppendFrameHeader(nil, 1), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
}

func FuzzParseFrame(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fp, body, err := avro.ParseFrame(b)
		if err != nil {
			if !errors.Is(err, avro.ErrNotAvro) {
				t.Fatalf("error %v is not ErrNotAvro", err)
			}
			return
		}
		if len(b) < avro.HeaderLen || len(body) != len(b)-avro.HeaderLen {
			t.Fatalf("accepted %d bytes, body %d", len(b), len(body))
		}
		if got := avro.AppendFrameHeader(nil, fp); string(got) != string(b[:avro.HeaderLen]) {
			t.Fatalf("header % x does not re-encode: % x", b[:avro.HeaderLen], got)
		}
	})
}

// FuzzDecode feeds arbitrary bytes to the codecs of the test domain: they
// must return a value or an error, never panic; and a value they return must
// survive encoding and decoding again.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	reg := schemaregistry.NewMemory()
	c := newCodecs(f, reg)
	if err := avro.Register(context.Background(), c.all()...); err != nil {
		f.Fatal(err)
	}
	for _, o := range olderSchemas {
		if _, err := reg.Register(context.Background(), o.schema); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(v any, err error, again func(any) (any, error)) {
			if err != nil {
				for _, known := range []error{avro.ErrNotAvro, avro.ErrUnknownSchema, avro.ErrWrongType, avro.ErrIncompatible, avro.ErrMalformedBody} {
					if errors.Is(err, known) {
						return
					}
				}
				t.Fatalf("unclassified error: %v", err)
			}
			w, err := again(v)
			if err != nil {
				t.Fatalf("%#v does not survive re-encoding: %v", v, err)
			}
			if !reflect.DeepEqual(v, w) {
				t.Fatalf("re-encoding changed %#v into %#v", v, w)
			}
		}
		{
			v, err := avro.DecodeNoRecover(c.person, b)
			check(v, err, func(v any) (any, error) { return reencode(c.person, v.(Person)) })
		}
		{
			v, err := avro.DecodeUnionNoRecover(c.personCommands, b)
			check(v, err, func(v any) (any, error) { return reencode(c.personCommands, v.(PersonCommand)) })
		}
		{
			v, err := avro.DecodeUnionNoRecover(c.personEvents, b)
			check(v, err, func(v any) (any, error) { return reencode(c.personEvents, v.(PersonEvent)) })
		}
		{
			v, err := avro.DecodeNoRecover(c.shelf, b)
			check(v, err, func(v any) (any, error) { return reencode(c.shelf, v.(Shelf)) })
		}
		{
			v, err := avro.DecodeUnionNoRecover(c.shelfCommands, b)
			check(v, err, func(v any) (any, error) { return reencode(c.shelfCommands, v.(ShelfCommand)) })
		}
		{
			v, err := avro.DecodeUnionNoRecover(c.shelfEvents, b)
			check(v, err, func(v any) (any, error) { return reencode(c.shelfEvents, v.(ShelfEvent)) })
		}
	})
}

type codec[T any] interface {
	Encode(T) ([]byte, string, error)
	Decode([]byte) (T, error)
}

func reencode[T any](c codec[T], v T) (any, error) {
	b, _, err := c.Encode(v)
	if err != nil {
		return nil, err
	}
	return c.Decode(b)
}
