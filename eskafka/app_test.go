package eskafka_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/memstore"
)

// copyTransform copies each input record to its output topic and counts
// the records of each key in its table.
type copyTransform struct {
	table  *eskafka.Table
	output string
}

func (c copyTransform) Handle(tx *eskafka.Tx, r *kgo.Record) error {
	tx.Emit(&kgo.Record{Topic: c.output, Partition: -1, Key: r.Key, Value: r.Value})
	tx.Put(c.table, string(r.Key), r.Value)
	return nil
}

// newApp returns an app on a fresh broker and service, closed with the
// test.
func newApp(t *testing.T, cfg eskafka.AppConfig) *eskafka.App {
	t.Helper()
	base := newConfig(t)
	base.Store = nil
	if cfg.Brokers == nil {
		cfg.Brokers = base.Brokers
	}
	if cfg.Service == "" {
		cfg.Service = base.Service
	}
	if cfg.InstanceID == "" && cfg.DataDir == "" {
		cfg.InstanceID = base.InstanceID
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = base.Partitions
	}
	if cfg.ClientOpts == nil {
		cfg.ClientOpts = base.ClientOpts
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = kafkatest.ReplicationFactor(t, cfg.Brokers)
	}
	app, err := eskafka.NewApp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	return app
}

// runApp runs app until the test ends.
func runApp(t *testing.T, app *eskafka.App) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app.Run: %v", err)
		}
	})
}

// TestAppCreatesEveryTopicOfWhatIsRegistered registers an aggregate and a
// stage whose topics are not listed anywhere: Start must create every one
// of them (with the service's partition count, a table's changelog
// compacted), and the app must then run both: a command is decided and
// answered, and the stage copies its input.
func TestAppCreatesEveryTopicOfWhatIsRegistered(t *testing.T) {
	app := newApp(t, eskafka.AppConfig{})
	cfg := app.Config()
	counterAgg := eskafka.Register(app, counters, codecs)
	p := cfg.Service + ".copier."
	table := &eskafka.Table{Prefix: "c/", Topic: p + "changelog", Hashed: true}
	stage := eskafka.NewStage(eskafka.StageSpec{
		Name: "copier", Inputs: []string{p + "in"}, Tables: []*eskafka.Table{table},
		Transform: copyTransform{table: table, output: p + "out"},
		Outputs:   []string{p + "out"}, DeadLetter: p + "deadletter",
	}, app.StageConfig("copier"))
	app.AddStage(stage)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	want := []string{p + "in", p + "out", p + "changelog", p + "deadletter"}
	for _, s := range eskafka.AggregateTopics(cfg.Service, counters.Name).Specs() {
		want = append(want, s.Name)
	}
	details, err := adm.ListTopics(ctx, want...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		d, ok := details[name]
		if !ok || d.Err != nil {
			t.Errorf("topic %s was not created (%v)", name, d.Err)
			continue
		}
		if n := len(d.Partitions); n != partitions {
			t.Errorf("topic %s has %d partitions, want %d", name, n, partitions)
		}
	}
	configs, err := adm.DescribeTopicConfigs(ctx, p+"changelog")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := configs.On(p+"changelog", nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy != "compact" {
		t.Errorf("the stage's changelog has cleanup.policy=%q, want compact", policy)
	}

	if got := slices.Sorted(func(yield func(string) bool) {
		for name := range app.Stages() {
			if !yield(name) {
				return
			}
		}
	}); !slices.Equal(got, []string{"copier", "counters"}) {
		t.Errorf("stages = %v, want the aggregate under its name and the stage under its own", got)
	}
	if err := app.Readiness(); err == nil || !strings.Contains(err.Error(), "copier") {
		t.Errorf("readiness before running = %v, want the stages named as not ready", err)
	}
	runApp(t, app)
	waitFor(t, "the app to be ready", app.Ready)

	msgID := ids.New()
	if _, err := counterAgg.Gateway.Send(ctx, open{"c1"}, eskafka.SendOptions{MsgID: msgID}); err != nil {
		t.Fatal(err)
	}
	res, err := counterAgg.Gateway.Await(ctx, eskafka.Sent{MsgID: msgID})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Accepted() {
		t.Fatalf("open: %+v", res.Outcome)
	}
	if got, err := counterAgg.Processor.Get("c1"); err != nil || got.ID != "c1" {
		t.Errorf("Get(c1) = %+v, %v", got, err)
	}

	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: p + "in", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stage to copy its input", func() bool {
		b, err := stage.Lookup(table, "k")
		return err == nil && string(b) == "v"
	})
}

// TestAppPlan checks the plan's settings and the mistakes it refuses.
func TestAppPlan(t *testing.T) {
	cfg := eskafka.AppConfig{Config: eskafka.Config{Brokers: []string{"127.0.0.1:1"}, Service: "svc", InstanceID: "i", Partitions: 3}}
	stage := func(app *eskafka.App, name string, tables ...*eskafka.Table) *eskafka.Stage {
		return eskafka.NewStage(eskafka.StageSpec{
			Name: name, Inputs: []string{"svc.in"}, Outputs: []string{"svc.out"}, Tables: tables, DeadLetter: "svc.dead",
			Transform: copyTransform{output: "svc.out"},
		}, app.StageConfig(name))
	}
	newApp := func(t *testing.T) *eskafka.App {
		app, err := eskafka.NewApp(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(app.Close)
		return app
	}
	plan := func(app *eskafka.App) map[string]map[string]string {
		specs, err := app.Plan()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]map[string]string{}
		for _, s := range specs {
			m[s.Name] = s.Configs
		}
		return m
	}

	t.Run("implied and declared settings", func(t *testing.T) {
		app := newApp(t)
		app.AddStage(stage(app, "s", &eskafka.Table{Prefix: "t/", Topic: "svc.table"}))
		app.AddTopics(eskafka.TopicSpec{Name: "svc.out", Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": "-1"}},
			eskafka.TopicSpec{Name: "svc.extra", Configs: map[string]string{"cleanup.policy": "compact"}})
		eskafka.Register(app, counters, codecs)
		got := plan(app)
		for name, policy := range map[string]string{
			"svc.in": "delete", "svc.table": "compact", "svc.dead": "delete", "svc.extra": "compact",
			"svc.counters.commands": "delete", "svc.counters.changelog": "compact", "svc.counters.dedup": "compact,delete",
		} {
			if got[name]["cleanup.policy"] != policy {
				t.Errorf("%s: cleanup.policy=%q, want %q", name, got[name]["cleanup.policy"], policy)
			}
		}
		if got["svc.out"]["retention.ms"] != "-1" {
			t.Errorf("svc.out: the declared settings lost to the implied ones: %v", got["svc.out"])
		}
		if got["svc.counters.events"]["retention.ms"] != "-1" {
			t.Errorf("the aggregate's events are not kept forever: %v", got["svc.counters.events"])
		}
		if got["svc.dead"]["retention.ms"] == got["svc.in"]["retention.ms"] {
			t.Errorf("a dead-letter topic is kept as long as an input: %v", got["svc.dead"])
		}
	})

	refused := func(t *testing.T, app *eskafka.App, want string) {
		t.Helper()
		if _, err := app.Plan(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Plan() = %v, want an error containing %q", err, want)
		}
		if err := app.Start(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Start() = %v, want an error containing %q", err, want)
		}
	}
	t.Run("declared twice differently", func(t *testing.T) {
		app := newApp(t)
		app.AddTopics(eskafka.TopicSpec{Name: "svc.x", Configs: map[string]string{"cleanup.policy": "delete"}},
			eskafka.TopicSpec{Name: "svc.x", Configs: map[string]string{"cleanup.policy": "compact"}})
		refused(t, app, "declared twice")
	})
	t.Run("changelog not compacted", func(t *testing.T) {
		app := newApp(t)
		app.AddStage(stage(app, "s", &eskafka.Table{Prefix: "t/", Topic: "svc.table"}))
		app.AddTopics(eskafka.TopicSpec{Name: "svc.table", Configs: map[string]string{"cleanup.policy": "delete"}})
		refused(t, app, "must be compacted")
	})
	t.Run("stage registered twice", func(t *testing.T) {
		app := newApp(t)
		app.AddStage(stage(app, "s"))
		app.AddStage(stage(app, "s"))
		refused(t, app, "store s is opened twice")
	})
	t.Run("aggregate registered twice", func(t *testing.T) {
		app := newApp(t)
		eskafka.Register(app, counters, codecs)
		counters2 := counters
		eskafka.Register(app, counters2, codecs)
		refused(t, app, "twice")
	})
	t.Run("store that does not open", func(t *testing.T) {
		c := cfg
		c.OpenStore = func(name string) (store.Store, error) { return nil, errors.New("disk full") }
		app, err := eskafka.NewApp(c)
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		eskafka.Register(app, counters, codecs)
		refused(t, app, "disk full")
	})
}

// TestAppRegisterAfterStart checks that a stage registered once the
// topics are made is refused, not left to run without its topics.
func TestAppRegisterAfterStart(t *testing.T) {
	app := newApp(t, eskafka.AppConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eskafka.Register(app, counters, codecs)
	if err := app.Run(ctx); err == nil || !strings.Contains(err.Error(), "after Start") {
		t.Errorf("Run after a late registration = %v, want it refused", err)
	}
}

// closeRecorder is a store that notes when it is closed.
type closeRecorder struct {
	*memstore.Store
	name string
	log  *[]string
}

func (c closeRecorder) Close() error {
	*c.log = append(*c.log, "store "+c.name)
	return nil
}

// TestAppClose checks what Close releases and in which order: what was
// passed to OnClose, last first, then the stores (which the stages use
// until the end).
func TestAppClose(t *testing.T) {
	var log []string
	app, err := eskafka.NewApp(eskafka.AppConfig{
		Config: eskafka.Config{Brokers: []string{"127.0.0.1:1"}, Service: "svc", InstanceID: "i", Partitions: 3},
		OpenStore: func(name string) (store.Store, error) {
			return closeRecorder{Store: memstore.New(), name: name, log: &log}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	eskafka.Register(app, counters, codecs)
	app.OnClose(func() { log = append(log, "first") })
	app.OnClose(func() { log = append(log, "second") })
	app.Close()
	app.Close()
	if want := []string{"second", "first", "store counters"}; !slices.Equal(log, want) {
		t.Errorf("closed %v, want %v", log, want)
	}
}

// TestAppInstanceID checks that an app without an instance id keeps one in
// its data directory, and a restart finds the same.
func TestAppInstanceID(t *testing.T) {
	dir := t.TempDir()
	cfg := eskafka.AppConfig{Config: eskafka.Config{Brokers: []string{"127.0.0.1:1"}, Service: "svc", Partitions: 3}, DataDir: dir}
	ids := make([]string, 2)
	for i := range ids {
		app, err := eskafka.NewApp(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = app.Config().InstanceID
		app.Close()
	}
	if ids[0] == "" || ids[0] != ids[1] {
		t.Errorf("instance ids %q, want the same one twice", ids)
	}
	b, err := os.ReadFile(filepath.Join(dir, "instance-id"))
	if err != nil || strings.TrimSpace(string(b)) != ids[0] {
		t.Errorf("instance-id file = %q, %v", b, err)
	}
	cfg.DataDir = ""
	if _, err := eskafka.NewApp(cfg); err == nil {
		t.Error("an app with neither an instance id nor a data directory was made")
	}
}

// TestAppRunStopsOnFailure checks that a runner's failure stops the others
// and is what Run returns, and that Run refuses to run twice.
func TestAppRunStopsOnFailure(t *testing.T) {
	app, err := eskafka.NewApp(eskafka.AppConfig{Config: eskafka.Config{Brokers: []string{"127.0.0.1:1"}, Service: "svc", InstanceID: "i", Partitions: 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	boom := errors.New("boom")
	stopped := make(chan struct{})
	app.Go(func(ctx context.Context) error {
		<-ctx.Done()
		close(stopped)
		return nil
	})
	app.Go(func(context.Context) error { return boom })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Run(ctx); !errors.Is(err, boom) {
		t.Errorf("Run = %v, want the runner's failure", err)
	}
	select {
	case <-stopped:
	default:
		t.Error("Run returned before stopping the other runner")
	}
	if err := app.Run(ctx); err == nil {
		t.Error("a second Run was accepted")
	}
}

// TestAppProducerKeepsUnderCommandLimits checks that Start reads the
// commands topics' max.message.bytes for the producer: batches of commands
// must stay under it, so that only a command too large on its own is
// refused.
func TestAppProducerKeepsUnderCommandLimits(t *testing.T) {
	app := newApp(t, eskafka.AppConfig{})
	cfg := app.Config()
	agg := eskafka.Register(app, counters, codecs)
	commands := agg.Processor.Topics().Commands
	// The operator made the commands topic smaller than the default.
	var specs []eskafka.TopicSpec
	for _, s := range agg.Processor.Topics().Specs() {
		if s.Name == commands {
			s.Configs = map[string]string{"cleanup.policy": "delete", "max.message.bytes": "50000"}
		}
		specs = append(specs, s)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := eskafka.EnsureTopics(ctx, cl, cfg.Partitions, kafkatest.ReplicationFactor(t, cfg.Brokers), specs...); err != nil {
		t.Fatal(err)
	}
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := app.ProducerLimit(commands); got != 50000 {
		t.Errorf("producer limit for %s = %d, want its max.message.bytes 50000", commands, got)
	}
}

// Start warns, naming the setting, about a broker setting that costs the
// service (here one that would make the brokers refuse the stages'
// transactional producers).
func TestAppWarnsAboutBrokerSettings(t *testing.T) {
	if kafkatest.Real() {
		t.Skip("sets a broker setting of an in-process broker")
	}
	c, err := kfake.NewCluster(kfake.BrokerConfigs(map[string]string{"transaction.max.timeout.ms": "5000"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var logs bytes.Buffer
	var mu sync.Mutex
	app := newApp(t, eskafka.AppConfig{Config: eskafka.Config{
		Brokers: c.ListenAddrs(),
		Logger:  slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil)),
	}, ReplicationFactor: 1})
	eskafka.Register(app, counters, codecs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "level=WARN msg=\"broker setting transaction.max.timeout.ms=5000") {
		t.Fatalf("no warning naming transaction.max.timeout.ms=5000 in the logs:\n%s", logs.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
