package eskafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/memstore"
)

// maxBufferedCommandBytes bounds the commands the producer holds that no
// broker has confirmed yet.
const maxBufferedCommandBytes = 128 << 20

// AppConfig configures an App.
type AppConfig struct {
	// Config is what every stage of the application shares: brokers,
	// service name, partitions, security options (ClientOpts), cluster
	// secret, observer... Its Store is ignored: each stage gets its own
	// from OpenStore. An empty InstanceID is loaded from DataDir.
	Config
	// ReplicationFactor is the replication factor the topics are created
	// with and checked against (EnsureTopics).
	ReplicationFactor int16
	// DataDir, when InstanceID is empty, keeps the instance id (file
	// "instance-id"), created on first start: a restarted instance
	// reuses its transactional ids and so fences its own unfinished
	// transactions at once.
	DataDir string
	// OpenStore opens the local store of the stage or aggregate name;
	// the App closes it. Nil: an in-memory store, restored from the
	// changelogs at every start (tests, examples).
	OpenStore func(name string) (store.Store, error)
	// OutcomeCodec encodes the results records (nil: DefaultOutcomeCodec).
	OutcomeCodec es.Codec[Outcome]
}

// App is one instance of an event-sourced application on Kafka: the one
// place where its aggregates and stages are registered, and what every
// service would otherwise write by hand around them.
//
// Build it with NewApp, register each aggregate with Register (one call:
// it opens the aggregate's store and makes its processor, outcome follower
// and gateway) and each other stage (a projection, a reaction) with
// AddStage, then call Start: it plans the topics from what was registered
// (Plan), creates the missing ones and checks the existing ones
// (EnsureTopics), and reads the command topics' size limits for the shared
// command producer. Run then runs every stage and follower until its
// context ends; Readiness says whether they have joined, restored and make
// progress; Close, after Run, closes the producer, what was passed to
// OnClose (last first), and the stores.
//
// Topics are never listed by hand: every topic a registered stage reads or
// writes (its inputs, its tables' changelogs, its outputs and its
// dead-letter topic) is part of the plan, with the settings declared for it
// (an aggregate declares its own, AddTopics adds others) or, when none
// was, settings implied by its role (see Plan). A stage registered without
// any declaration still finds its topics created before it runs.
//
// Registration methods do not return errors: the first failure (a store
// that does not open, a name registered twice, a registration after Start)
// is kept and returned by Start, Plan and Run, so that adding an aggregate
// stays one line. Nothing registered runs before Start succeeded.
type App struct {
	cfg      AppConfig
	producer *kgo.Client

	// limits are the command topics' max.message.bytes, read by Start
	// and consulted by the producer when it first writes to a topic.
	limitsMu sync.RWMutex
	limits   map[string]int

	mu       sync.Mutex
	err      error
	started  bool
	running  bool
	closed   bool
	stages   []namedStage
	specs    []TopicSpec
	commands []string // command topics, written by the producer
	runners  []func(context.Context) error
	closers  []func()
	stores   []store.Store
	storeIDs map[string]bool
}

// namedStage is a registered stage under the name it is watched and
// reported by: an aggregate's name for its processor, else the stage's.
type namedStage struct {
	name  string
	stage *Stage
}

// NewApp returns an application with nothing registered. It reads (or
// creates) the instance id and makes the command producer; it does not
// contact Kafka.
func NewApp(cfg AppConfig) (*App, error) {
	if cfg.Service == "" {
		return nil, errors.New("app: empty service name")
	}
	if cfg.Partitions <= 0 {
		return nil, fmt.Errorf("app: partitions must be positive, got %d", cfg.Partitions)
	}
	if cfg.ReplicationFactor <= 0 {
		cfg.ReplicationFactor = 1
	}
	if cfg.InstanceID == "" {
		if cfg.DataDir == "" {
			return nil, errors.New("app: neither an instance id nor a data directory to keep one in")
		}
		id, err := LoadInstanceID(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		cfg.InstanceID = id
	}
	if cfg.OutcomeCodec == nil {
		cfg.OutcomeCodec = DefaultOutcomeCodec()
	}
	cfg.Store = nil
	cfg.defaults()
	// A broker one client found silent is silent for all: every client
	// of the App notes it, and new sessions and restores of any stage
	// start from the other brokers.
	cfg.silent = &silentBrokers{}
	cfg.ClientOpts = append(slices.Clone(cfg.ClientOpts), kgo.WithHooks(cfg.silent))
	if cfg.ClientLogLevel != kgo.LogLevelNone {
		cfg.ClientOpts = append(cfg.ClientOpts, kgo.WithLogger(ClientLogger(cfg.Logger, cfg.ClientLogLevel)))
	}
	a := &App{cfg: cfg, limits: map[string]int{}, storeIDs: map[string]bool{}}
	// One idempotent producer for every gateway. Commands are cut into
	// batches under their topic's limit, so that only a command too
	// large on its own is refused; the limits are read by Start, before
	// anything can be sent.
	producer, err := kgo.NewClient(append(append(FailoverOpts(),
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytesFn(a.batchMaxBytes),
		// Commands a broker has not confirmed stay buffered; while
		// Kafka is away, this bounds their memory, and a Send past it
		// is refused at once (Gateway.Send).
		kgo.MaxBufferedBytes(maxBufferedCommandBytes),
	), cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	a.producer = producer
	return a, nil
}

// batchMaxBytes is the producer's batch limit for topic: its
// max.message.bytes as Start read it (franz-go asks once per partition, at
// its first record).
func (a *App) batchMaxBytes(topic string) int32 {
	a.limitsMu.RLock()
	defer a.limitsMu.RUnlock()
	if n, ok := a.limits[topic]; ok {
		return int32(min(n, 1<<30))
	}
	return defaultMaxBatchBytes
}

// Config returns the configuration the application's stages share (with
// its instance id, without a store).
func (a *App) Config() Config { return a.cfg.Config }

// Producer returns the command producer the gateways share.
func (a *App) Producer() *kgo.Client { return a.producer }

// fail keeps the first registration error.
func (a *App) fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failLocked(err)
}

func (a *App) failLocked(err error) {
	if a.err == nil {
		a.err = err
	}
}

// StageConfig returns the shared configuration with the store named name
// opened (OpenStore), for a stage made outside Register: a projection's.
// Two stages must not share a store, so a name is refused the second time.
// A failure is returned by Start (the Config then has no store).
func (a *App) StageConfig(name string) Config {
	cfg := a.cfg.Config
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		a.failLocked(fmt.Errorf("store %s: the app is closed", name))
		return cfg
	}
	if a.storeIDs[name] {
		a.failLocked(fmt.Errorf("store %s is opened twice: two stages must not share a store", name))
		return cfg
	}
	a.storeIDs[name] = true
	open := a.cfg.OpenStore
	if open == nil {
		open = func(string) (store.Store, error) { return memstore.New(), nil }
	}
	st, err := open(name)
	if err != nil {
		a.failLocked(fmt.Errorf("open store %s: %w", name, err))
		return cfg
	}
	a.stores = append(a.stores, st)
	cfg.Store = st
	return cfg
}

// AddStage registers stages to be planned, run and watched under their
// names (StageSpec.Name).
func (a *App) AddStage(stages ...*Stage) {
	for _, st := range stages {
		a.addStage(st.spec.Name, st)
	}
}

func (a *App) addStage(name string, st *Stage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.started:
		a.failLocked(fmt.Errorf("stage %s registered after Start: its topics would not be planned", name))
		return
	case slices.ContainsFunc(a.stages, func(s namedStage) bool { return s.name == name || s.stage.spec.Name == st.spec.Name }):
		a.failLocked(fmt.Errorf("stage %s registered twice (names and consumer groups must be unique)", name))
		return
	case st.cfg.Store == nil:
		a.failLocked(fmt.Errorf("stage %s has no store: make its Config with App.StageConfig", name))
		return
	case st.cfg.Partitions <= 0:
		a.failLocked(fmt.Errorf("stage %s has %d partitions: make its Config with App.StageConfig", name, st.cfg.Partitions))
		return
	case st.specError() != nil:
		a.failLocked(st.specError())
		return
	}
	for _, other := range a.stages {
		if sameStore(other.stage.cfg.Store, st.cfg.Store) {
			// Both would read, write and drop the same keys.
			a.failLocked(fmt.Errorf("stages %s and %s share one store: give each its own App.StageConfig", other.name, name))
			return
		}
	}
	a.stages = append(a.stages, namedStage{name: name, stage: st})
	a.runners = append(a.runners, st.Run)
}

// AddTopics declares the settings of topics: a declaration wins over the
// settings Plan infers from a topic's role. A topic no stage uses is
// created too.
func (a *App) AddTopics(specs ...TopicSpec) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		a.failLocked(errors.New("topics declared after Start"))
		return
	}
	a.specs = append(a.specs, specs...)
}

// Go adds run to what Run runs: it gets Run's context and should return
// when it ends; an error stops the application.
func (a *App) Go(run func(ctx context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running {
		a.failLocked(errors.New("runner added while running"))
		return
	}
	a.runners = append(a.runners, run)
}

// OnClose adds fn to what Close does, after closing the producer and
// before the stores; the last added runs first. Pass what the stages use
// and the application owns, such as a schema registry.
func (a *App) OnClose(fn func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closers = append(a.closers, fn)
}

// Topic roles, from the strongest claim on a topic's settings down: a
// table's changelog must be compacted to keep every key's last value.
const (
	roleData = iota
	roleDeadLetter
	roleChangelog
)

// stageTopics returns every topic the stage reads or writes, with its role.
func (s *Stage) stageTopics() map[string]int {
	topics := map[string]int{}
	claim := func(name string, role int) {
		if name != "" {
			topics[name] = max(topics[name], role)
		}
	}
	for _, t := range s.spec.Inputs {
		claim(t, roleData)
	}
	for _, t := range s.spec.Outputs {
		claim(t, roleData)
	}
	for _, t := range s.spec.Tables {
		if t.Restore != nil {
			// An index of records the stage writes anyway: the
			// topic is data, not a changelog of its own.
			claim(t.Topic, roleData)
		} else {
			claim(t.Topic, roleChangelog)
		}
	}
	claim(s.spec.DeadLetter, roleDeadLetter)
	return topics
}

// sameStore reports whether a and b are the same store, without comparing
// values of a type that cannot be compared.
func sameStore(a, b store.Store) bool {
	ta := reflect.TypeOf(a)
	return ta != nil && ta == reflect.TypeOf(b) && ta.Comparable() && a == b
}

// topicWriters returns, for each topic a stage writes (its outputs and
// its tables' changelogs), the stages that write it.
func (a *App) topicWriters() map[string][]string {
	writers := map[string][]string{}
	for _, ns := range a.stages {
		written := slices.Clone(ns.stage.spec.Outputs)
		for _, t := range ns.stage.spec.Tables {
			written = append(written, t.Topic)
		}
		slices.Sort(written)
		for _, t := range slices.Compact(written) {
			writers[t] = append(writers[t], ns.name)
		}
	}
	return writers
}

// impliedSpec returns the settings of a topic nobody declared, by role: a
// changelog is compacted and kept forever, a dead-letter topic keeps its
// records a month (long enough for an operator to look), other topics a
// week (like commands and repartitioned changes).
func impliedSpec(name string, role int) TopicSpec {
	switch role {
	case roleChangelog:
		return TopicSpec{Name: name, Configs: map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}}
	case roleDeadLetter:
		return TopicSpec{Name: name, Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": monthMS}}
	}
	return TopicSpec{Name: name, Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": weekMS}}
}

// Plan returns every topic the application needs, by name: those declared
// (by Register and AddTopics) with their settings, and every other topic a
// registered stage reads or writes with the settings of its role — a
// table's changelog compacted and kept forever, a dead-letter topic kept a
// month, any other a week. It fails on the first registration error, on a
// topic declared twice with different settings, and on a table's changelog
// declared without compaction (deleting its old records would lose keys'
// states).
func (a *App) Plan() ([]TopicSpec, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return nil, a.err
	}
	plan := map[string]TopicSpec{}
	for _, s := range a.specs {
		if prev, ok := plan[s.Name]; ok && !maps.Equal(prev.Configs, s.Configs) {
			return nil, fmt.Errorf("topic %s is declared twice with different settings: %v and %v", s.Name, prev.Configs, s.Configs)
		}
		plan[s.Name] = s
	}
	writers := a.topicWriters()
	for _, ns := range a.stages {
		for _, t := range ns.stage.spec.Tables {
			if w := writers[t.Topic]; t.Restore == nil && len(w) > 1 {
				// A restore would read the other stage's records as
				// its own table's.
				return nil, fmt.Errorf("topic %s is the changelog of a table of stage %s, and stages %v all write it: each table needs a changelog of its own", t.Topic, ns.name, w)
			}
		}
	}
	roles := map[string]int{}
	for _, ns := range a.stages {
		for name, role := range ns.stage.stageTopics() {
			roles[name] = max(roles[name], role)
		}
	}
	for name, role := range roles {
		s, declared := plan[name]
		if !declared {
			plan[name] = impliedSpec(name, role)
			continue
		}
		if role == roleChangelog && !strings.Contains(s.CleanupPolicy(), "compact") {
			return nil, fmt.Errorf("topic %s is a table's changelog but declared with cleanup.policy=%q: it must be compacted", name, s.CleanupPolicy())
		}
	}
	specs := slices.Collect(maps.Values(plan))
	slices.SortFunc(specs, func(x, y TopicSpec) int { return strings.Compare(x.Name, y.Name) })
	return specs, nil
}

// Start prepares what was registered to run: it creates the planned topics
// that are missing and checks the others (partition count, cleanup policy,
// replication: EnsureTopics), and reads the command topics' size limits
// for the producer. It returns the first registration error instead, and
// does nothing more once it has succeeded. Run calls it.
func (a *App) Start(ctx context.Context) error {
	a.mu.Lock()
	started, err := a.started, a.err
	a.mu.Unlock()
	if started {
		return err
	}
	specs, err := a.Plan()
	if err != nil {
		return err
	}
	if len(specs) > 0 {
		if err := a.prepareTopics(ctx, specs); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.started = true
	return a.err
}

// prepareTopics creates and checks the topics of specs, and reads the
// command topics' limits for the producer.
func (a *App) prepareTopics(ctx context.Context, specs []TopicSpec) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.cfg.Brokers...)}, a.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("kafka admin client: %w", err)
	}
	defer cl.Close()
	if err := EnsureTopics(ctx, cl, a.cfg.Partitions, a.cfg.ReplicationFactor, specs...); err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	findings, err := BrokerSettings(ctx, kadm.NewClient(cl))
	if err != nil {
		a.cfg.Logger.Info("cannot read the broker's settings; not checking them", "err", err)
	}
	for _, f := range findings {
		a.cfg.Logger.Warn(f)
	}
	a.mu.Lock()
	commands := slices.Clone(a.commands)
	a.mu.Unlock()
	if len(commands) > 0 {
		limits, err := MaxMessageBytes(ctx, kadm.NewClient(cl), commands...)
		if err != nil {
			return fmt.Errorf("topics: %w", err)
		}
		a.limitsMu.Lock()
		maps.Copy(a.limits, limits)
		a.limitsMu.Unlock()
	}
	return nil
}

// Run starts the application if Start has not, then runs every stage,
// outcome follower and runner (Go) until ctx ends or one of them fails,
// which stops the others. It returns when they all have, with the first
// failure. A stage finishes its transaction in flight and leaves its
// group. Close the App after Run.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	a.mu.Lock()
	if a.running || a.closed {
		a.mu.Unlock()
		return errors.New("app: Run called twice, or after Close")
	}
	a.running = true
	runners := slices.Clone(a.runners)
	a.mu.Unlock()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, run := range runners {
		wg.Go(func() {
			if err := run(rctx); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}

// Stages returns the registered stages by name: an aggregate's processor
// under the aggregate's name, another stage under its StageSpec.Name.
func (a *App) Stages() map[string]*Stage {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[string]*Stage, len(a.stages))
	for _, ns := range a.stages {
		m[ns.name] = ns.stage
	}
	return m
}

// Ready reports whether every stage has joined, restored and makes
// progress.
func (a *App) Ready() bool { return a.Readiness() == nil }

// Readiness returns nil when every registered stage has joined its group,
// restored the partitions it owns and makes progress; else why not, naming
// the stages: joining or restoring, failing again and again, or stalled
// (Config.StallTimeout).
func (a *App) Readiness() error {
	stages := a.Stages()
	names := slices.Sorted(maps.Keys(stages))
	var waiting []string
	for _, name := range names {
		if !stages[name].Ready() {
			// A stage whose sessions keep failing spends most of its
			// time joining again: say why, not only that it joins.
			if err := stages[name].Health(); err != nil {
				name += " (" + err.Error() + ")"
			}
			waiting = append(waiting, name)
		}
	}
	if len(waiting) > 0 {
		return fmt.Errorf("joining the consumer groups or restoring partitions: %s", strings.Join(waiting, ", "))
	}
	var problems []error
	for _, name := range names {
		if err := stages[name].Health(); err != nil {
			problems = append(problems, err)
		}
	}
	return errors.Join(problems...)
}

// Close releases what the application holds, in the order that is safe
// once Run has returned: the producer (nothing is sent any more), what was
// passed to OnClose (last first), then the stores. It may be called more
// than once, and on an application that never ran.
func (a *App) Close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	closers, stores := a.closers, a.stores
	a.closers, a.stores = nil, nil
	a.mu.Unlock()
	a.producer.Close()
	for _, c := range slices.Backward(closers) {
		c()
	}
	for _, st := range stores {
		if err := st.Close(); err != nil {
			a.cfg.Logger.Warn("close store", "err", err)
		}
	}
}

// Registered is an aggregate registered in an App: the processor that
// decides its commands and answers queries, and the gateway that sends
// commands and awaits their outcomes.
type Registered[S, C, E any] struct {
	Processor *Processor[S, C, E]
	Gateway   *Gateway[S, C, E]
	Outcomes  *Outcomes
}

// Register adds an aggregate to app in one call: it opens the aggregate's
// store (named after it), makes its processor, the follower of its results
// topic and its gateway on the shared producer, declares its topics
// (AggregateTopics) and registers the processor under the aggregate's name
// and the follower to run. A failure is returned by Start, as is an
// aggregate or codecs lacking a field the runtime calls.
func Register[S, C, E any](app *App, agg es.Aggregate[S, C, E], codecs es.Codecs[S, C, E]) *Registered[S, C, E] {
	if err := checkAggregate(agg, codecs); err != nil {
		// Refused now, rather than a nil function called at every
		// command (each dead-lettered) or at every Send.
		app.fail(err)
	}
	cfg := app.StageConfig(agg.Name)
	p := NewProcessor(agg, codecs, app.cfg.OutcomeCodec, cfg)
	outcomes, err := NewOutcomes(cfg, p.Topics().Results, app.cfg.OutcomeCodec)
	if err != nil {
		app.fail(fmt.Errorf("aggregate %s: %w", agg.Name, err))
	}
	r := &Registered[S, C, E]{
		Processor: p,
		Gateway:   NewGateway(agg, codecs, cfg.Service, app.producer, outcomes),
		Outcomes:  outcomes,
	}
	app.AddTopics(p.Topics().Specs()...)
	app.addStage(agg.Name, p.Stage)
	app.mu.Lock()
	app.commands = append(app.commands, p.Topics().Commands)
	if outcomes != nil {
		app.runners = append(app.runners, outcomes.Run)
	}
	app.mu.Unlock()
	return r
}

// checkAggregate returns an error naming the fields of agg and codecs that
// the processor or the gateway would call but are not set.
func checkAggregate[S, C, E any](agg es.Aggregate[S, C, E], codecs es.Codecs[S, C, E]) error {
	var missing []string
	for _, f := range []struct {
		name  string
		unset bool
	}{
		{"Aggregate.Name", agg.Name == ""}, {"Aggregate.Decide", agg.Decide == nil}, {"Aggregate.Evolve", agg.Evolve == nil},
		{"Aggregate.Key", agg.Key == nil}, {"Aggregate.Version", agg.Version == nil}, {"Aggregate.Exists", agg.Exists == nil},
		{"Codecs.State", codecs.State == nil}, {"Codecs.Command", codecs.Command == nil}, {"Codecs.Event", codecs.Event == nil},
	} {
		if f.unset {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("aggregate %q lacks %s", agg.Name, strings.Join(missing, ", "))
	}
	return nil
}

// LoadInstanceID returns the instance id kept in dataDir (file
// "instance-id"), creating it on first start: a restart reuses its
// transactional ids and so fences its own unfinished transactions at once.
func LoadInstanceID(dataDir string) (string, error) {
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
