package service

import (
	"context"
	"net/http"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/catalogapi"
	"github.com/bookscatalog/catalog/internal/web"
	"github.com/bookscatalog/catalog/internal/web/catalogui"
)

// extraHandlers returns the handlers mounted beside the JSON API: metrics
// and the web application (the page at /, its assets under /ui/ and the
// live events at /events/stream), drawn from the aggregates described
// here and named as the HTTP resources that serve them.
func (s *Service) extraHandlers(rtCfg eskafka.Config, codecs *kafkaCodecs, authorsAPI *catalogapi.Authors, booksAPI *catalogapi.Books) map[string]http.Handler {
	// Each aggregate the page shows: its description, its events topic
	// and how to show its events as the JSON API does.
	authors, books := catalogui.Authors(authorsAPI), catalogui.Books(booksAPI)
	authors.Topic = eskafka.AggregateTopics(rtCfg.Service, authors.Name).Events
	authors.Decode = web.EventDecoder(codecs.authors.Event, authorEventsJSON())
	books.Topic = eskafka.AggregateTopics(rtCfg.Service, books.Name).Events
	books.Decode = web.EventDecoder(codecs.books.Event, bookEventsJSON())
	aggs := []web.Aggregate{authors, books}

	feed := web.NewFeed(&web.KafkaSource{
		Brokers:    rtCfg.Brokers,
		ClientOpts: rtCfg.ClientOpts,
		Aggregates: aggs,
		Logger:     s.log,
	}, web.FeedConfig{Logger: s.log, MaxSubscribers: s.cfg.StreamMaxSubscribers})
	// The feed's Kafka consumer starts with the first subscriber. Close
	// ends it with the service; ending the event streams as soon as Run
	// is told to stop also keeps them from holding up the HTTP server's
	// graceful shutdown, which waits for open responses.
	s.closers = append(s.closers, feed.Close)
	s.runners = append(s.runners, func(ctx context.Context) error {
		<-ctx.Done()
		feed.Close()
		return nil
	})
	h := web.Handlers(web.Config{
		Title:      catalogui.Title,
		Aggregates: aggs,
		Extension:  catalogui.Extension(),
		TokenHint:  catalogui.TokenHint,
		Feed:       feed, Logger: s.log,
		MaxStreams: s.cfg.StreamMaxSubscribers, MaxStreamsPerClient: s.cfg.StreamMaxPerClient})
	h["GET /metrics"] = s.metrics.Handler()
	return h
}
