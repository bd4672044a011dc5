package author_test

import (
	"testing"

	"github.com/bookscatalog/catalog/internal/domain/author"
)

// BenchmarkDecideEvolve measures one update: decide on an existing author,
// then fold the event.
func BenchmarkDecideEvolve(b *testing.B) {
	s := author.Evolve(author.State{}, author.AuthorCreated{Code: "jane-austen", FirstName: "Jane", LastName: "Austen"})
	cmd := author.UpdateAuthor{Code: "jane-austen", FirstName: "Jane", LastName: "Austen"}
	b.ReportAllocs()
	for b.Loop() {
		evs, err := author.Decide(s, cmd)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range evs {
			s = author.Evolve(s, e)
		}
	}
}
