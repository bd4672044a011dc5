package catalogavro_test

import (
	"context"
	"testing"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/internal/catalogavro"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// must returns v, panicking on err (a test set-up failure).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newCodecs(t testing.TB, reg avro.Registry) *catalogavro.Codecs {
	t.Helper()
	c, err := catalogavro.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// registered returns the codecs with their schemas registered in a new
// in-memory registry.
func registered(t testing.TB) (*catalogavro.Codecs, *schemaregistry.Memory) {
	t.Helper()
	reg := schemaregistry.NewMemory()
	c := newCodecs(t, reg)
	if err := avro.Register(context.Background(), c.All()...); err != nil {
		t.Fatal(err)
	}
	return c, reg
}

var authorCreated = author.AuthorCreated{Code: "jane-austen", FirstName: "Jane", LastName: "Austen"}
