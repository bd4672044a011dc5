package service

import (
	"context"
	"fmt"

	"github.com/bookscatalog/catalog/internal/avro"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/domain/booksbyauthor"
	"github.com/bookscatalog/catalog/internal/es"
	"github.com/bookscatalog/catalog/internal/eskafka"
	"github.com/bookscatalog/catalog/internal/projection"
)

// kafkaCodecs are the Avro codecs of every record value the service writes
// to Kafka (docs/wire-format.md).
type kafkaCodecs struct {
	authors  es.Codecs[author.State, author.Command, author.Event]
	books    es.Codecs[book.State, book.Command, book.Event]
	outcomes es.Codec[eskafka.Outcome]
	byAuthor projection.Codecs
}

// newKafkaCodecs builds the codecs on reg and registers their schemas,
// refusing an incompatible change to a schema already registered.
func newKafkaCodecs(ctx context.Context, reg avro.Registry) (*kafkaCodecs, error) {
	var (
		c   kafkaCodecs
		err error
		all []avro.Registrant
	)
	must := func(codec avro.Registrant, e error) {
		if err == nil {
			err = e
			all = append(all, codec)
		}
	}
	authorState, e := avro.NewValue[author.State](reg, "catalog.author")
	must(authorState, e)
	authorCmds, e := avro.NewUnion[author.Command](reg, "catalog.author", avro.Of[author.CreateAuthor](), avro.Of[author.UpdateAuthor](), avro.Of[author.DeleteAuthor]())
	must(authorCmds, e)
	authorEvents, e := avro.NewUnion[author.Event](reg, "catalog.author", avro.Of[author.AuthorCreated](), avro.Of[author.AuthorUpdated](), avro.Of[author.AuthorDeleted]())
	must(authorEvents, e)
	bookState, e := avro.NewValue[book.State](reg, "catalog.book")
	must(bookState, e)
	bookCmds, e := avro.NewUnion[book.Command](reg, "catalog.book", avro.Of[book.CreateBook](), avro.Of[book.UpdateBook](), avro.Of[book.SetBookAuthor](),
		avro.Of[book.AddChapter](), avro.Of[book.RemoveChapter](), avro.Of[book.RemoveBook]())
	must(bookCmds, e)
	bookEvents, e := avro.NewUnion[book.Event](reg, "catalog.book", avro.Of[book.BookCreated](), avro.Of[book.BookUpdated](), avro.Of[book.BookAuthorSet](),
		avro.Of[book.ChapterAdded](), avro.Of[book.ChapterRemoved](), avro.Of[book.BookRemoved]())
	must(bookEvents, e)
	outcomes, e := avro.NewValue[eskafka.Outcome](reg, "catalog.runtime")
	must(outcomes, e)
	links, e := avro.NewValue[booksbyauthor.BookLink](reg, "catalog.booksbyauthor")
	must(links, e)
	changes, e := avro.NewValue[booksbyauthor.Link](reg, "catalog.booksbyauthor")
	must(changes, e)
	views, e := avro.NewValue[booksbyauthor.View](reg, "catalog.booksbyauthor")
	must(views, e)
	if err != nil {
		return nil, fmt.Errorf("avro schemas: %w", err)
	}
	if err := avro.Register(ctx, all...); err != nil {
		return nil, fmt.Errorf("register schemas: %w", err)
	}
	c.authors = es.Codecs[author.State, author.Command, author.Event]{State: authorState, Command: authorCmds, Event: authorEvents}
	c.books = es.Codecs[book.State, book.Command, book.Event]{State: bookState, Command: bookCmds, Event: bookEvents}
	c.outcomes = outcomes
	c.byAuthor = projection.Codecs{
		AuthorEvents: authorEvents, BookEvents: bookEvents, BookCommands: bookCmds,
		Links: links, Changes: changes, Views: views,
	}
	return &c, nil
}
