// Package catalogavro builds the Avro codecs of every record value the
// catalog writes to Kafka (docs/wire-format.md): the states, commands and
// events of its aggregates, the runtime's outcomes, and the records of its
// read model. It is the catalog's side of the generic package avro, which
// knows nothing of authors or books; its tests keep the frozen history of
// the catalog's schemas (testdata) that today's code must still read.
//
// The commands and events come from the lists their domain packages declare
// (author.Commands, book.Events...): a union built here that misses a
// declared type, or holds one that is not declared, is an error of New.
package catalogavro

import (
	"fmt"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/domain/booksbyauthor"
)

// The namespaces of the catalog's records: a record is named after its Go
// type in the namespace of its aggregate or stage ("catalog.author.State").
const (
	AuthorNamespace        = "catalog.author"
	BookNamespace          = "catalog.book"
	RuntimeNamespace       = "catalog.runtime"
	BooksByAuthorNamespace = "catalog.booksbyauthor"
)

// Codecs are the Avro codecs of every record value the catalog writes.
type Codecs struct {
	AuthorState    *avro.Value[author.State]
	AuthorCommands *avro.Union[author.Command]
	AuthorEvents   *avro.Union[author.Event]
	BookState      *avro.Value[book.State]
	BookCommands   *avro.Union[book.Command]
	BookEvents     *avro.Union[book.Event]
	// Outcomes are the runtime's outcomes of commands (results topics).
	Outcomes *avro.Value[eskafka.Outcome]
	// Links, Changes and Views are the records of the books-by-author
	// read model's topics.
	Links   *avro.Value[booksbyauthor.BookLink]
	Changes *avro.Value[booksbyauthor.Link]
	Views   *avro.Value[booksbyauthor.View]
}

// New builds the codecs on reg. Their schemas are not registered yet: pass
// All to avro.Register at start-up (or only the codecs a tool writes with).
func New(reg avro.Registry) (*Codecs, error) {
	var c Codecs
	var err error
	if c.AuthorState, err = avro.NewValue[author.State](reg, AuthorNamespace); err != nil {
		return nil, err
	}
	if c.AuthorCommands, err = union(reg, AuthorNamespace, author.Commands(),
		avro.Of[author.CreateAuthor](), avro.Of[author.UpdateAuthor](), avro.Of[author.DeleteAuthor]()); err != nil {
		return nil, err
	}
	if c.AuthorEvents, err = union(reg, AuthorNamespace, author.Events(),
		avro.Of[author.AuthorCreated](), avro.Of[author.AuthorUpdated](), avro.Of[author.AuthorDeleted]()); err != nil {
		return nil, err
	}
	if c.BookState, err = avro.NewValue[book.State](reg, BookNamespace); err != nil {
		return nil, err
	}
	if c.BookCommands, err = union(reg, BookNamespace, book.Commands(),
		avro.Of[book.CreateBook](), avro.Of[book.UpdateBook](), avro.Of[book.SetBookAuthor](),
		avro.Of[book.AddChapter](), avro.Of[book.RemoveChapter](), avro.Of[book.RemoveBook]()); err != nil {
		return nil, err
	}
	if c.BookEvents, err = union(reg, BookNamespace, book.Events(),
		avro.Of[book.BookCreated](), avro.Of[book.BookUpdated](), avro.Of[book.BookAuthorSet](),
		avro.Of[book.ChapterAdded](), avro.Of[book.ChapterRemoved](), avro.Of[book.BookRemoved]()); err != nil {
		return nil, err
	}
	if c.Outcomes, err = avro.NewValue[eskafka.Outcome](reg, RuntimeNamespace); err != nil {
		return nil, err
	}
	if c.Links, err = avro.NewValue[booksbyauthor.BookLink](reg, BooksByAuthorNamespace); err != nil {
		return nil, err
	}
	if c.Changes, err = avro.NewValue[booksbyauthor.Link](reg, BooksByAuthorNamespace); err != nil {
		return nil, err
	}
	if c.Views, err = avro.NewValue[booksbyauthor.View](reg, BooksByAuthorNamespace); err != nil {
		return nil, err
	}
	return &c, nil
}

// union builds the codec of members and checks it against the types the
// domain declares. (The schemas come from type parameters, Of[T], so the
// members cannot be derived from the declared values; the check makes
// forgetting one here an error at start-up, and in every test.)
func union[I any](reg avro.Registry, namespace string, declared []I, members ...avro.Member) (*avro.Union[I], error) {
	u, err := avro.NewUnion[I](reg, namespace, members...)
	if err != nil {
		return nil, err
	}
	if err := u.CheckMembers(declared); err != nil {
		return nil, fmt.Errorf("the domain's list and the Avro codec differ: %w", err)
	}
	return u, nil
}

// All returns every codec, for avro.Register.
func (c *Codecs) All() []avro.Registrant {
	return []avro.Registrant{
		c.AuthorState, c.AuthorCommands, c.AuthorEvents,
		c.BookState, c.BookCommands, c.BookEvents,
		c.Outcomes, c.Links, c.Changes, c.Views,
	}
}
