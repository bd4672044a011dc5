package catalogavro

import (
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// A union that misses a type the domain declares is refused, naming it, as
// when an event is added to the domain but not to New.
func TestUnionChecksTheDeclaredList(t *testing.T) {
	reg := schemaregistry.NewMemory()
	_, err := union(reg, AuthorNamespace, author.Events(), avro.Of[author.AuthorCreated](), avro.Of[author.AuthorDeleted]())
	if err == nil || !strings.Contains(err.Error(), "author.AuthorUpdated is declared but not a member") {
		t.Fatalf("err = %v", err)
	}
	if _, err := union(reg, AuthorNamespace, author.Events(), avro.Of[author.AuthorCreated](), avro.Of[author.AuthorUpdated](), avro.Of[author.AuthorDeleted]()); err != nil {
		t.Fatal(err)
	}
}
