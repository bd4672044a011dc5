// Package service assembles the catalog: it starts the embedded broker when
// no Kafka is configured, creates and checks the topics, opens the stores,
// and runs the processors, outcome followers and HTTP API until stopped.
// It is the composition root; cmd/catalog only calls it.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/internal/avro"
	"github.com/bookscatalog/catalog/internal/codec/jsoncodec"
	"github.com/bookscatalog/catalog/internal/config"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/embedded"
	"github.com/bookscatalog/catalog/internal/es"
	"github.com/bookscatalog/catalog/internal/eskafka"
	"github.com/bookscatalog/catalog/internal/httpapi"
	"github.com/bookscatalog/catalog/internal/httpapi/catalogapi"
	"github.com/bookscatalog/catalog/internal/metrics"
	"github.com/bookscatalog/catalog/internal/projection"
	"github.com/bookscatalog/catalog/internal/schemaregistry"
	"github.com/bookscatalog/catalog/internal/store"
	"github.com/bookscatalog/catalog/internal/store/pebblestore"
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
		Name:    "books",
		Decide:  book.Decide,
		Evolve:  book.Evolve,
		Key:     book.Command.BookID,
		Version: book.Version,
		Exists:  book.State.Exists,
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
	cfg     config.Config
	log     *slog.Logger
	broker  *embedded.Broker
	stores  []store.Store
	runners []func(context.Context) error
	ready   []func() bool
	handler http.Handler
	srv     *http.Server
	stages  map[string]*eskafka.Stage
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
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
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
	opts.ClientOpts = append(secOpts, opts.ClientOpts...)
	for _, w := range kafkaSec.Warnings() {
		s.log.Warn(w)
	}
	s.log.Info("kafka", "brokers", brokers, "security", kafkaSec)
	instanceID, err := loadInstanceID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.metrics = metrics.New()
	rtCfg := eskafka.Config{Observer: s.metrics,
		Brokers: brokers, Service: cfg.Service, InstanceID: instanceID, Partitions: cfg.Partitions, AdvertisedURL: cfg.AdvertisedURL,
		ClusterSecret: cfg.ClusterSecret, Logger: s.log, ClientOpts: opts.ClientOpts, BeforeCommit: opts.BeforeCommit,
		StallTimeout: cfg.StallTimeout, OutcomeCacheBytes: cfg.OutcomeCacheBytes,
	}

	admCl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka admin client: %w", err)
	}
	defer admCl.Close()
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var specs []eskafka.TopicSpec
	for _, name := range []string{Authors().Name, Books().Name} {
		specs = append(specs, eskafka.AggregateTopics(cfg.Service, name).Specs()...)
	}
	specs = append(specs, projection.BooksByAuthorTopics(cfg.Service).Specs()...)
	if err := eskafka.EnsureTopics(tctx, admCl, cfg.Partitions, cfg.ReplicationFactor, specs...); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}

	registry, err := schemaregistry.New(tctx, brokers, cfg.Service+".schemas",
		schemaregistry.WithReplicationFactor(cfg.ReplicationFactor), schemaregistry.WithClientOpts(opts.ClientOpts...),
		schemaregistry.WithLogger(s.log))
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	s.closers = append(s.closers, registry.Close)
	codecs, err := newKafkaCodecs(tctx, registry)
	if err != nil {
		return nil, err
	}
	rtCfg.Retryable = func(err error) bool { return errors.Is(err, avro.ErrRegistryUnavailable) }

	// Commands are cut into batches under their topic's limit, so that
	// only a command too large on its own is refused (413).
	commandLimits, err := eskafka.MaxMessageBytes(tctx, kadm.NewClient(admCl),
		eskafka.AggregateTopics(cfg.Service, Authors().Name).Commands, eskafka.AggregateTopics(cfg.Service, Books().Name).Commands)
	if err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	producer, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		eskafka.BatchMaxBytes(commandLimits),
	}, opts.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	s.closers = append(s.closers, producer.Close)

	authors, err := wireAggregate(s, rtCfg, Authors(), codecs.authors, codecs.outcomes, producer)
	if err != nil {
		return nil, err
	}
	books, err := wireAggregate(s, rtCfg, Books(), codecs.books, codecs.outcomes, producer)
	if err != nil {
		return nil, err
	}
	linksCfg, viewCfg := rtCfg, rtCfg
	if linksCfg.Store, err = s.openStore("booksbyauthor-links"); err != nil {
		return nil, err
	}
	if viewCfg.Store, err = s.openStore("booksbyauthor-view"); err != nil {
		return nil, err
	}
	byAuthor := projection.NewBooksByAuthor(linksCfg, viewCfg, codecs.byAuthor)
	for _, st := range byAuthor.Stages() {
		s.runners = append(s.runners, st.Run)
		s.ready = append(s.ready, st.Ready)
	}

	peers, err := s.peers()
	if err != nil {
		return nil, err
	}
	access, err := s.access(ctx)
	if err != nil {
		return nil, err
	}
	s.stages = map[string]*eskafka.Stage{
		"authors": authors.processor.Stage, "books": books.processor.Stage,
		"booksbyauthor.links": byAuthor.Stages()[0], "booksbyauthor.view": byAuthor.Stages()[1],
	}
	for name, st := range s.stages {
		s.metrics.WatchStage(name, func() bool { return st.Health() == nil })
	}
	authorsAPI := &catalogapi.Authors{
		Aggregate: Authors(), Singular: "author", KeyName: "code", ValidKey: catalogapi.ValidAuthorCode,
		Writer: authors.gateway, Reader: authors.processor, Commands: authorCommandsJSON(), Events: authorEventsJSON(),
		Render: catalogapi.RenderAuthor, Writes: catalogapi.AuthorWrites(),
		Reads: map[string]httpapi.Read{"books": catalogapi.BooksOfAuthorRead(byAuthor.Get, byAuthor.Stages()[1])},
	}
	api := httpapi.Config{
		WriteTimeout:  cfg.WriteTimeout,
		Peers:         peers,
		Partitions:    int(cfg.Partitions),
		Metadata:      s.metadata,
		Observe:       s.metrics.Request,
		Extra:         s.extraHandlers(brokers, rtCfg, codecs),
		Health:        s,
		Logger:        s.log,
		AllowedHosts:  allowedHosts(cfg),
		Access:        access,
		AdminListener: cfg.AdminAddr != "",
	}
	api.Handle(authorsAPI)
	api.Handle(&catalogapi.Books{
		Aggregate: Books(), Singular: "book", KeyName: "id", ValidKey: catalogapi.ValidBookID,
		Writer: books.gateway, Reader: books.processor, Commands: bookCommandsJSON(), Events: bookEventsJSON(),
		Render: catalogapi.RenderBook, Writes: catalogapi.BookWrites(),
		Precheck: catalogapi.CheckBookAuthor(httpapi.Exists(authorsAPI, peers)),
	})
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
	s.srv = httpapi.NewServer(s.handler, httpapi.ServerConfig{})
	return s, nil
}

type wired[S, C, E any] struct {
	processor *eskafka.Processor[S, C, E]
	gateway   *eskafka.Gateway[S, C, E]
}

// wireAggregate opens the aggregate's store and prepares its processor,
// outcome follower and gateway.
func wireAggregate[S, C, E any](s *Service, cfg eskafka.Config, agg es.Aggregate[S, C, E], codecs es.Codecs[S, C, E], outcomeCodec es.Codec[eskafka.Outcome], producer *kgo.Client) (*wired[S, C, E], error) {
	st, err := s.openStore(agg.Name)
	if err != nil {
		return nil, err
	}
	cfg.Store = st
	p := eskafka.NewProcessor(agg, codecs, outcomeCodec, cfg)
	outcomes, err := eskafka.NewOutcomes(cfg, p.Topics().Results, outcomeCodec)
	if err != nil {
		return nil, err
	}
	s.runners = append(s.runners, p.Run, outcomes.Run)
	s.ready = append(s.ready, p.Ready)
	return &wired[S, C, E]{processor: p, gateway: eskafka.NewGateway(agg, codecs, s.cfg.Service, producer, outcomes)}, nil
}

// openStore opens the Pebble store DATA_DIR/stores/name; it is closed
// with the service.
func (s *Service) openStore(name string) (store.Store, error) {
	st, err := pebblestore.Open(filepath.Join(s.cfg.DataDir, "stores", name))
	if err != nil {
		return nil, err
	}
	s.stores = append(s.stores, st)
	return st, nil
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
	for name, st := range s.stages {
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
func (s *Service) Readiness() error {
	for _, r := range s.ready {
		if !r() {
			return errors.New("joining the consumer groups or restoring partitions")
		}
	}
	var problems []error
	for _, name := range slices.Sorted(maps.Keys(s.stages)) {
		if err := s.stages[name].Health(); err != nil {
			problems = append(problems, err)
		}
	}
	return errors.Join(problems...)
}

// Run serves until ctx is done, then shuts down gracefully: it stops
// accepting requests, lets processors finish their open transaction and
// leave their groups, and closes the stores and the broker.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(s.runners)+1)
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
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer scancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.log.Warn("http shutdown", "err", err)
	}
	cancel()
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func (s *Service) close() {
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
	for _, st := range s.stores {
		if err := st.Close(); err != nil {
			s.log.Warn("close store", "err", err)
		}
	}
	s.stores = nil
	if s.broker != nil {
		s.broker.Close()
		s.broker = nil
	}
}

// loadInstanceID returns the instance id kept in dataDir, creating it on
// first start: a restart reuses its transactional ids and so fences its own
// unfinished transactions at once.
func loadInstanceID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "instance-id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read instance id: %w", err)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write instance id: %w", err)
	}
	return id, nil
}
