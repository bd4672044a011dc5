package catalogavro_test

import (
	"context"
	"testing"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/schemaregistry"
)

var benchBook = book.State{
	ID: bookID, Title: "Emma", AuthorCode: "jane-austen", NextChapterID: 4, Version: 9,
	Chapters: []book.Chapter{{ID: 1, Title: "One", Content: "Emma Woodhouse, handsome, clever, and rich"}, {ID: 2, Title: "Two", Content: "…"}, {ID: 3, Title: "Three", Content: "…"}},
}

func BenchmarkEncodeEvent(b *testing.B) {
	c, _ := registered(b)
	var ev author.Event = authorCreated
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.AuthorEvents.Encode(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	c, _ := registered(b)
	frame, _, _ := c.AuthorEvents.Encode(authorCreated)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.AuthorEvents.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// Decoding a frame of an older schema version (resolution).
func BenchmarkDecodeEventResolved(b *testing.B) {
	reg := schemaregistry.NewMemory()
	c := newCodecs(b, reg)
	if err := avro.Register(context.Background(), c.All()...); err != nil {
		b.Fatal(err)
	}
	old := `{"type":"record","name":"AuthorCreated","namespace":"catalog.author","fields":[{"name":"code","type":"string"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"},{"name":"born","type":"int"}]}`
	fp := must(reg.Register(context.Background(), old))
	frame := append(avro.AppendFrameHeader(nil, fp), 2, 'a', 2, 'b', 2, 'c', 4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.AuthorEvents.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeBookState(b *testing.B) {
	c, _ := registered(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.BookState.Encode(benchBook); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBookState(b *testing.B) {
	c, _ := registered(b)
	frame, _, _ := c.BookState.Encode(benchBook)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.BookState.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}
