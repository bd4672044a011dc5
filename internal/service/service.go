// Package service assembles the catalog: it starts the embedded broker when
// no Kafka is configured, creates and checks the topics, opens the stores,
// and runs the processors, outcome followers and HTTP API until stopped.
// It is the composition root; cmd/catalog only calls it.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/codec/jsoncodec"
	"github.com/bookscatalog/catalog/embedded"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/httpapi"
	"github.com/bookscatalog/catalog/internal/catalogapi"
	"github.com/bookscatalog/catalog/internal/config"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/metrics"
	"github.com/bookscatalog/catalog/internal/projection"
	"github.com/bookscatalog/catalog/schemaregistry"
	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/pebblestore"
)

// Authors returns the Author aggregate as the runtime sees it.
func Authors() es.Aggregate[author.State, author.Command, author.Event] {
	return es.Aggregate[author.State, author.Command, author.Event]{
		Name:    "authors",
		Decide:  author.Decide,
		Evolve:  author.Evolve,
		Key:     author.Command.AuthorCode,
		Version: author.Version,
		Exists:  author.State.Exists,
	}
}

// Books returns the Book aggregate as the runtime sees it.
func Books() es.Aggregate[book.State, book.Command, book.Event] {
	return es.Aggregate[book.State, book.Command, book.Event]{
		Name:     "books",
		Decide:   book.Decide,
		Evolve:   book.Evolve,
		Key:      book.Command.BookID,
		Version:  book.Version,
		Exists:   book.State.Exists,
		Identity: book.Identity,
	}
}

// The JSON shapes of commands and events.
func authorCommandsJSON() *jsoncodec.Union[author.Command] {
	return jsoncodec.NewUnion(author.Commands()...)
}

func authorEventsJSON() *jsoncodec.Union[author.Event] {
	return jsoncodec.NewUnion(author.Events()...)
}

func bookCommandsJSON() *jsoncodec.Union[book.Command] {
	return jsoncodec.NewUnion(book.Commands()...)
}

func bookEventsJSON() *jsoncodec.Union[book.Event] {
	return jsoncodec.NewUnion(book.Events()...)
}

// Options adjust a service beyond its configuration, for tests.
type Options struct {
	// ClientOpts are added to every Kafka client.
	ClientOpts []kgo.Opt
	// BeforeCommit is passed to every processor (failure injection).
	BeforeCommit func(ctx context.Context) error
	// Listener, if set, serves HTTP instead of listening on HTTPAddr.
	Listener net.Listener
}

// Service is a running catalog instance.
type Service struct {
	cfg    config.Config
	log    *slog.Logger
	broker *embedded.Broker
	// app runs the aggregates and stages, and owns their stores.
	app *eskafka.App
	// runners and closers are the HTTP side's (operator listener, web
	// feed, schema registry): they stop with the HTTP server, before
	// the stages.
	runners []func(context.Context) error
	handler http.Handler
	srv     *http.Server
	metrics *metrics.Metrics
	ln      net.Listener
	closers []func()
	// admin is the operator listener (ADMIN_ADDR), if any.
	admin net.Listener
}

// New prepares a service: on return the broker (if embedded) runs, the
// topics exist and the stores are open, but nothing consumes yet.
func New(ctx context.Context, cfg config.Config, opts Options) (s *Service, err error) {
	self := &Service{cfg: cfg, log: cfg.Logger()}
	s = self
	defer func() {
		if err != nil {
			self.close() // s is nil when returning an error
		}
	}()
	// Private: it holds the stores and, with the embedded broker, its log
	// and credentials.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	brokers, kafkaSec := cfg.Brokers, cfg.Kafka
	if len(brokers) == 0 {
		s.broker, err = embedded.StartIn(cfg.EmbeddedAddr, cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("%w (is another instance using it? set KAFKA_BROKERS to share its broker, or EMBEDDED_KAFKA_ADDR to use another address)", err)
		}
		brokers, kafkaSec = []string{s.broker.Addr()}, s.broker.Client()
		s.log.Info("embedded Kafka broker started", "addr", s.broker.Addr(), "dir", filepath.Join(cfg.DataDir, "kafka"),
			"credentials", filepath.Join(cfg.DataDir, embedded.PasswordFile), "kcat", "kcat -F "+filepath.Join(cfg.DataDir, embedded.ClientPropertiesFile))
	}
	// Every Kafka client below is made with opts.ClientOpts: the
	// security options go first, so a test's options still apply.
	secOpts, err := kafkaSec.ClientOpts()
	if err != nil {
		return nil, fmt.Errorf("kafka security: %w", err)
	}
	// Every client reads batches bounded as the runtime's are (the
	// registry's and the web feed's too).
	opts.ClientOpts = append(append(secOpts, kgo.MaxDecompressBatchBytes(eskafka.MaxBatchBytes)), opts.ClientOpts...)
	if cfg.KafkaLogLevel != kgo.LogLevelNone {
		opts.ClientOpts = append(opts.ClientOpts, kgo.WithLogger(eskafka.ClientLogger(s.log, cfg.KafkaLogLevel)))
	}
	for _, w := range kafkaSec.Warnings() {
		s.log.Warn(w)
	}
	s.log.Info("kafka", "brokers", brokers, "security", kafkaSec)
	s.metrics = metrics.New()
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	registry, err := schemaregistry.New(tctx, brokers, cfg.Service+".schemas",
		schemaregistry.WithReplicationFactor(cfg.ReplicationFactor), schemaregistry.WithClientOpts(opts.ClientOpts...),
		schemaregistry.WithLogger(s.log))
	if err != nil {
		if firstRead := new(kgo.ErrFirstReadEOF); s.broker == nil && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &firstRead) || errors.Is(err, syscall.ECONNRESET)) {
			// The usual cause is a listener spoken to in another
			// protocol (TLS to plain text, or SASL to none), which
			// a client reports as time running out or as a broker
			// that hung up (a TLS hello read as a Kafka request
			// announces more than socket.request.max.bytes, and the
			// broker closes the connection).
			return nil, fmt.Errorf("schema registry: no answer from the Kafka brokers %s (KAFKA_BROKERS) in time, connecting over %s: "+
				"check that KAFKA_TLS, KAFKA_TLS_* and KAFKA_SASL_* match their listener: %w", strings.Join(brokers, ","), kafkaSec.Protocol(), err)
		}
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	s.closers = append(s.closers, registry.Close)
	codecs, err := newKafkaCodecs(tctx, registry)
	if err != nil {
		return nil, err
	}

	// The application: every aggregate and stage is registered here once;
	// it plans, creates and checks their topics, runs them, and answers
	// readiness (eskafka.App).
	s.app, err = eskafka.NewApp(eskafka.AppConfig{
		Config: eskafka.Config{
			Brokers: brokers, Service: cfg.Service, Partitions: cfg.Partitions, AdvertisedURL: cfg.AdvertisedURL,
			ClusterSecret: cfg.ClusterSecret, Logger: s.log, ClientOpts: opts.ClientOpts, BeforeCommit: opts.BeforeCommit,
			StallTimeout: cfg.StallTimeout, OutcomeCacheBytes: cfg.OutcomeCacheBytes, Observer: s.metrics, Lanes: cfg.Lanes, Overlap: cfg.Overlap,
			ClientLogLevel: cfg.KafkaLogLevel,
			Retryable:      func(err error) bool { return errors.Is(err, avro.ErrRegistryUnavailable) },
		},
		ReplicationFactor: cfg.ReplicationFactor,
		DataDir:           cfg.DataDir,
		OpenStore:         s.openStore,
		OutcomeCodec:      codecs.outcomes,
	})
	if err != nil {
		return nil, err
	}
	app := s.app
	authors := eskafka.Register(app, Authors(), codecs.authors)
	books := eskafka.Register(app, Books(), codecs.books)
	byAuthor := projection.Register(app, codecs.byAuthor, projection.WithLinger(cfg.ProjectionLinger))
	if err := app.Start(tctx); err != nil {
		return nil, err
	}
	rtCfg := app.Config()
	for name, st := range app.Stages() {
		s.metrics.WatchStage(name, func() bool { return st.Health() == nil })
	}

	peers, err := s.peers()
	if err != nil {
		return nil, err
	}
	access, err := s.access(ctx)
	if err != nil {
		return nil, err
	}
	authorsAPI := &catalogapi.Authors{
		Aggregate: Authors(), Singular: "author", KeyName: "code", ValidKey: catalogapi.ValidAuthorCode,
		Writer: authors.Gateway, Reader: authors.Processor, Commands: authorCommandsJSON(), Events: authorEventsJSON(),
		Render: catalogapi.RenderAuthor, Writes: catalogapi.AuthorWrites(),
		Reads: map[string]httpapi.Read{"books": catalogapi.BooksOfAuthorRead(byAuthor.Get, byAuthor.View())},
	}
	booksAPI := &catalogapi.Books{
		Aggregate: Books(), Singular: "book", KeyName: "id", ValidKey: catalogapi.ValidBookID,
		Writer: books.Gateway, Reader: books.Processor, Commands: bookCommandsJSON(), Events: bookEventsJSON(),
		Render: catalogapi.RenderBook, Writes: catalogapi.BookWrites(),
		Precheck: catalogapi.CheckBookAuthor(httpapi.Check(authorsAPI, peers)),
	}
	api := httpapi.Config{
		WriteTimeout:  cfg.WriteTimeout,
		Peers:         peers,
		Partitions:    int(cfg.Partitions),
		Metadata:      s.metadata,
		Observe:       s.metrics.Request,
		Extra:         s.extraHandlers(rtCfg, codecs, authorsAPI, booksAPI),
		Health:        s,
		Logger:        s.log,
		AllowedHosts:  allowedHosts(cfg),
		Access:        access,
		AdminListener: cfg.AdminAddr != "",
	}
	api.Handle(authorsAPI)
	api.Handle(booksAPI)
	s.handler = httpapi.New(api)
	if err := s.startAdmin(api); err != nil {
		return nil, err
	}
	s.ln = opts.Listener
	if s.ln == nil {
		s.ln, err = net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return nil, fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
		}
	}
	s.securityWarnings(s.ln.Addr())
	ln, err := s.secureListener(httpapi.LimitListener(s.ln, cfg.HTTPMaxConns))
	if err != nil {
		_ = s.ln.Close()
		return nil, err
	}
	s.ln = ln
	// Over HTTP/2 one connection carries many requests: the same cap
	// bounds the requests handled at once.
	s.srv = httpapi.NewServer(s.handler, httpapi.ServerConfig{
		MaxRequests: cfg.HTTPMaxConns, MaxRequestsPerClient: cfg.HTTPMaxPerClient, Peers: peers,
		Logger: s.log,
	})
	return s, nil
}

// openStore opens the Pebble store DATA_DIR/stores/name (the app closes
// it).
func (s *Service) openStore(name string) (store.Store, error) {
	return pebblestore.Open(filepath.Join(s.cfg.DataDir, "stores", name))
}

// Metadata is the answer of GET /metadata.
type Metadata struct {
	// Self is this instance's advertised URL.
	Self string `json:"self"`
	// Instances are the advertised URLs of every instance that owns a
	// partition of some stage.
	Instances []string `json:"instances"`
	// Partitions is the partition count of every topic.
	Partitions int32                    `json:"partitions"`
	Stages     map[string]StageMetadata `json:"stages"`
}

// StageMetadata describes one stage's partitions.
type StageMetadata struct {
	// Owners maps each partition to its owner's URL ("" while moving).
	Owners map[int32]string `json:"owners"`
	// Local is what this instance does with the partitions it owns:
	// "restoring" or "ready".
	Local map[int32]string `json:"local"`
}

func (s *Service) metadata() any {
	m := Metadata{Self: s.cfg.AdvertisedURL, Instances: []string{}, Partitions: s.cfg.Partitions, Stages: map[string]StageMetadata{}}
	seen := map[string]bool{}
	for name, st := range s.app.Stages() {
		sm := StageMetadata{Owners: map[int32]string{}, Local: map[int32]string{}}
		owners := st.Owners()
		for p := range s.cfg.Partitions {
			sm.Owners[p] = owners[p]
			if u := owners[p]; u != "" && !seen[u] {
				seen[u] = true
				m.Instances = append(m.Instances, u)
			}
		}
		for p, state := range st.Partitions() {
			sm.Local[p] = state.String()
		}
		m.Stages[name] = sm
	}
	slices.Sort(m.Instances)
	return m
}

// Handler returns the HTTP API.
func (s *Service) Handler() http.Handler { return s.handler }

// Addr returns the HTTP listen address.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// allowedHosts are the Host names the API answers: ALLOWED_HOSTS, else
// those HTTP_ADDR and ADVERTISED_URL name (none checked on a wildcard
// listen address).
func allowedHosts(cfg config.Config) []string {
	if len(cfg.AllowedHosts) > 0 {
		return cfg.AllowedHosts
	}
	return httpapi.DefaultAllowedHosts(cfg.HTTPAddr, cfg.AdvertisedURL)
}

// Ready reports whether every stage has joined and restored, and makes
// progress.
func (s *Service) Ready() bool { return s.Readiness() == nil }

// Readiness returns nil when the instance is ready to serve, else why not,
// naming the stages: joining their groups or restoring partitions, failing
// again and again, or stalled (STALL_TIMEOUT).
func (s *Service) Readiness() error { return s.app.Readiness() }

// Run serves until ctx is done, then shuts down gracefully: it stops
// accepting requests and lets those in flight finish while the stages still
// run (a write waiting for its outcome gets it), then stops the stages
// (each finishes its open transaction and leaves its groups), and closes
// the stores and the broker.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(s.runners)+2)
	actx, stopApp := context.WithCancel(context.WithoutCancel(ctx))
	defer stopApp()
	appDone := make(chan struct{})
	go func() {
		defer close(appDone)
		if err := s.app.Run(actx); err != nil {
			errs <- err
			cancel()
		}
	}()
	var wg sync.WaitGroup
	for _, run := range s.runners {
		wg.Go(func() {
			if err := run(rctx); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	go func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("http server: %w", err)
			cancel()
		}
	}()
	s.log.Info("catalog serving", "http", s.scheme()+"://"+s.Addr(), "advertised", s.cfg.AdvertisedURL, "service", s.cfg.Service, "partitions", s.cfg.Partitions)
	<-rctx.Done()
	s.log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout(s.cfg.WriteTimeout))
	defer scancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.log.Warn("http shutdown", "err", err)
	}
	wg.Wait()
	stopApp()
	<-appDone
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// minDrain is the least time a shutdown gives requests in flight.
const minDrain = 15 * time.Second

// drainTimeout bounds how long a shutdown waits for the requests in flight
// before it stops the stages: at least minDrain, and a write's whole
// WRITE_TIMEOUT and a margin to send its answer, so that a write in flight
// gets its outcome (or its 504 with the msgId) rather than being cut when
// the process exits.
func drainTimeout(writeTimeout time.Duration) time.Duration {
	return max(minDrain, writeTimeout+5*time.Second)
}

// close releases, once nothing runs any more, what New acquired: the app
// (producer, stores), the HTTP side's resources, then the broker.
func (s *Service) close() {
	if s.app != nil {
		s.app.Close()
	}
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
	if s.broker != nil {
		s.broker.Close()
		s.broker = nil
	}
}
