package book_test

import (
	"testing"

	"github.com/bookscatalog/catalog/internal/domain/book"
)

// BenchmarkDecideEvolve measures adding a chapter to a book of 20 chapters.
func BenchmarkDecideEvolve(b *testing.B) {
	const id = "0b7f2f44-9d4c-4c8e-9a55-1f1b3c7d2e10"
	s := book.Evolve(book.State{}, book.BookCreated{ID: id, Title: "Emma"})
	for range 20 {
		evs, _ := book.Decide(s, book.AddChapter{ID: id, Title: "Chapter", Content: "text"})
		for _, e := range evs {
			s = book.Evolve(s, e)
		}
	}
	cmd := book.AddChapter{ID: id, Title: "Chapter", Content: "text"}
	b.ReportAllocs()
	for b.Loop() {
		evs, err := book.Decide(s, cmd)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range evs {
			_ = book.Evolve(s, e)
		}
	}
}
