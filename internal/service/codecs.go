package service

import (
	"context"
	"fmt"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/catalogavro"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/projection"
)

// kafkaCodecs are the Avro codecs of every record value the service writes
// to Kafka (docs/wire-format.md), grouped as the stages take them.
type kafkaCodecs struct {
	authors  es.Codecs[author.State, author.Command, author.Event]
	books    es.Codecs[book.State, book.Command, book.Event]
	outcomes es.Codec[eskafka.Outcome]
	byAuthor projection.Codecs
}

// newKafkaCodecs builds the codecs on reg (package catalogavro, from the
// types the domain packages declare) and registers their schemas, refusing
// an incompatible change to a schema already registered.
func newKafkaCodecs(ctx context.Context, reg avro.Registry) (*kafkaCodecs, error) {
	c, err := catalogavro.New(reg)
	if err != nil {
		return nil, fmt.Errorf("avro schemas: %w", err)
	}
	if err := avro.Register(ctx, c.All()...); err != nil {
		return nil, fmt.Errorf("register schemas: %w", err)
	}
	return &kafkaCodecs{
		authors:  es.Codecs[author.State, author.Command, author.Event]{State: c.AuthorState, Command: c.AuthorCommands, Event: c.AuthorEvents},
		books:    es.Codecs[book.State, book.Command, book.Event]{State: c.BookState, Command: c.BookCommands, Event: c.BookEvents},
		outcomes: c.Outcomes,
		byAuthor: projection.Codecs{
			AuthorEvents: c.AuthorEvents, BookEvents: c.BookEvents, BookCommands: c.BookCommands,
			Links: c.Links, Changes: c.Changes, Views: c.Views,
		},
	}, nil
}
