package author_test

import (
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/es/estest"
	"github.com/bookscatalog/catalog/internal/domain"
	"github.com/bookscatalog/catalog/internal/domain/author"
)

type tcase = estest.Case[author.State, author.Command, author.Event]

var agg = estest.Aggregate[author.State, author.Command, author.Event]{Decide: author.Decide, Evolve: author.Evolve}

func created(code string) author.Event {
	return author.AuthorCreated{Code: code, FirstName: "Jane", LastName: "Austen"}
}

func wantState(want author.State) func(*testing.T, author.State) {
	return func(t *testing.T, s author.State) {
		t.Helper()
		if s != want {
			t.Fatalf("state = %+v, want %+v", s, want)
		}
	}
}

func TestCreateAuthor(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "new", When: author.CreateAuthor{Code: "jane-austen", FirstName: "Jane", LastName: "Austen"},
			Want:  []author.Event{author.AuthorCreated{Code: "jane-austen", FirstName: "Jane", LastName: "Austen"}},
			Check: wantState(author.State{Code: "jane-austen", FirstName: "Jane", LastName: "Austen", Version: 1})},
		{Name: "exists", Given: []author.Event{created("ja")}, When: author.CreateAuthor{Code: "ja", FirstName: "J", LastName: "A"},
			WantCode: domain.CodeAlreadyExists},
		{Name: "recreate after delete", Given: []author.Event{created("ja"), author.AuthorDeleted{Code: "ja"}},
			When:  author.CreateAuthor{Code: "ja", FirstName: "J", LastName: "A"},
			Want:  []author.Event{author.AuthorCreated{Code: "ja", FirstName: "J", LastName: "A"}},
			Check: wantState(author.State{Code: "ja", FirstName: "J", LastName: "A", Version: 1})},
		{Name: "blank first name", When: author.CreateAuthor{Code: "ja", FirstName: "  ", LastName: "A"},
			WantCode: domain.CodeInvalid, WantField: "firstName"},
		{Name: "blank last name", When: author.CreateAuthor{Code: "ja", FirstName: "J"},
			WantCode: domain.CodeInvalid, WantField: "lastName"},
		{Name: "empty code", When: author.CreateAuthor{FirstName: "J", LastName: "A"},
			WantCode: domain.CodeInvalid, WantField: "code"},
		{Name: "upper-case code", When: author.CreateAuthor{Code: "Jane", FirstName: "J", LastName: "A"},
			WantCode: domain.CodeInvalid, WantField: "code"},
		{Name: "code with slash", When: author.CreateAuthor{Code: "a/b", FirstName: "J", LastName: "A"},
			WantCode: domain.CodeInvalid, WantField: "code"},
		{Name: "double hyphen", When: author.CreateAuthor{Code: "a--b", FirstName: "J", LastName: "A"},
			WantCode: domain.CodeInvalid, WantField: "code"},
		{Name: "code too long", When: author.CreateAuthor{Code: strings.Repeat("a", domain.MaxSlugLen+1), FirstName: "J", LastName: "A"},
			WantCode: domain.CodeInvalid, WantField: "code"},
		{Name: "name too long", When: author.CreateAuthor{Code: "ja", FirstName: strings.Repeat("x", domain.MaxNameLen+1), LastName: "A"},
			WantCode: domain.CodeInvalid, WantField: "firstName"},
		{Name: "control character in first name", When: author.CreateAuthor{Code: "ja", FirstName: "J\x00", LastName: "A"},
			WantCode: domain.CodeInvalid, WantField: "firstName"},
		{Name: "line feed in last name", When: author.CreateAuthor{Code: "ja", FirstName: "J", LastName: "Austen\nAdmin: yes"},
			WantCode: domain.CodeInvalid, WantField: "lastName"},
		{Name: "bidi override in last name", When: author.CreateAuthor{Code: "ja", FirstName: "J", LastName: "\u202eNETSUA"},
			WantCode: domain.CodeInvalid, WantField: "lastName"},
		{Name: "accents and scripts", When: author.CreateAuthor{Code: "ja", FirstName: "José Émile", LastName: "أحمد 李"},
			Want: []author.Event{author.AuthorCreated{Code: "ja", FirstName: "José Émile", LastName: "أحمد 李"}}},
	})
}

func TestUpdateAuthor(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "existing", Given: []author.Event{created("ja")}, When: author.UpdateAuthor{Code: "ja", FirstName: "J.", LastName: "Austen"},
			Want:  []author.Event{author.AuthorUpdated{Code: "ja", FirstName: "J.", LastName: "Austen"}},
			Check: wantState(author.State{Code: "ja", FirstName: "J.", LastName: "Austen", Version: 2})},
		{Name: "missing", When: author.UpdateAuthor{Code: "ja", FirstName: "J", LastName: "A"}, WantCode: domain.CodeNotFound},
		{Name: "deleted", Given: []author.Event{created("ja"), author.AuthorDeleted{Code: "ja"}},
			When: author.UpdateAuthor{Code: "ja", FirstName: "J", LastName: "A"}, WantCode: domain.CodeNotFound},
		{Name: "blank name", Given: []author.Event{created("ja")}, When: author.UpdateAuthor{Code: "ja", FirstName: "J", LastName: ""},
			WantCode: domain.CodeInvalid, WantField: "lastName"},
		{Name: "DEL in first name", Given: []author.Event{created("ja")}, When: author.UpdateAuthor{Code: "ja", FirstName: "J\x7f", LastName: "A"},
			WantCode: domain.CodeInvalid, WantField: "firstName"},
		{Name: "right-to-left mark in last name", Given: []author.Event{created("ja")}, When: author.UpdateAuthor{Code: "ja", FirstName: "J", LastName: "A\u200f"},
			WantCode: domain.CodeInvalid, WantField: "lastName"},
	})
}

func TestDeleteAuthor(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "existing", Given: []author.Event{created("ja")}, When: author.DeleteAuthor{Code: "ja"},
			Want: []author.Event{author.AuthorDeleted{Code: "ja"}}, Check: wantState(author.State{})},
		{Name: "missing", When: author.DeleteAuthor{Code: "ja"}, WantCode: domain.CodeNotFound},
		{Name: "twice", Given: []author.Event{created("ja"), author.AuthorDeleted{Code: "ja"}}, When: author.DeleteAuthor{Code: "ja"},
			WantCode: domain.CodeNotFound},
		{Name: "invalid code", When: author.DeleteAuthor{Code: "A B"}, WantCode: domain.CodeInvalid, WantField: "code"},
	})
}

func TestTypesListed(t *testing.T) {
	estest.AllListed(t, author.Commands())
	estest.AllListed(t, author.Events())
}
