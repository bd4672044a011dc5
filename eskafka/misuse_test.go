package eskafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
)

// Mistakes a library user can make in wiring stages are refused or named,
// never left to lose exactly-once quietly. Found by a review that built a
// new service from docs/extending.md; each test failed before.

// copier is a stage spec copying name.in to out, with table as its only
// table (none when nil).
func copier(cfg eskafka.Config, name, out string, table *eskafka.Table) *eskafka.Stage {
	spec := eskafka.StageSpec{Name: name, Inputs: []string{cfg.Service + "." + name + ".in"}, Outputs: []string{cfg.Service + "." + name + ".out"}}
	if table != nil {
		spec.Tables = []*eskafka.Table{table}
	}
	t := table
	if t == nil {
		t = &eskafka.Table{Prefix: "c/", Topic: cfg.Service + "." + name + ".undeclared", Hashed: true}
	}
	spec.Transform = copyTransform{table: t, output: out}
	return eskafka.NewStage(spec, cfg)
}

func planError(t *testing.T, app *eskafka.App, want string) {
	t.Helper()
	_, err := app.Plan()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Plan() = %v; want an error saying %q", err, want)
	}
}

// Two stages given one StageConfig would read, write and drop each
// other's keys.
func TestStagesSharingAStoreAreRefused(t *testing.T) {
	app := newApp(t, eskafka.AppConfig{})
	cfg := app.StageConfig("shared")
	table := func(n string) *eskafka.Table {
		return &eskafka.Table{Prefix: "c/", Topic: cfg.Service + "." + n + ".changelog", Hashed: true}
	}
	app.AddStage(copier(cfg, "a", cfg.Service+".a.out", table("a")), copier(cfg, "b", cfg.Service+".b.out", table("b")))
	planError(t, app, "share one store")
}

// App.Config has no store: a stage made with it used to crash the process
// with a nil pointer at its first commit, after Start accepted it.
func TestStageWithoutAStoreIsRefused(t *testing.T) {
	app := newApp(t, eskafka.AppConfig{})
	cfg := app.Config()
	app.AddStage(copier(cfg, "a", cfg.Service+".a.out", &eskafka.Table{Prefix: "c/", Topic: cfg.Service + ".a.changelog", Hashed: true}))
	planError(t, app, "has no store")
}

// A stage whose table's changelog is another stage's (here an
// aggregate's) would restore the other's records as its own.
func TestChangelogOfTwoStagesIsRefused(t *testing.T) {
	app := newApp(t, eskafka.AppConfig{})
	eskafka.Register(app, counters, codecs)
	cfg := app.StageConfig("view")
	changelog := eskafka.AggregateTopics(cfg.Service, counters.Name).Changelog
	app.AddStage(copier(cfg, "view", cfg.Service+".view.out", &eskafka.Table{Prefix: "v/", Topic: changelog, Hashed: true}))
	planError(t, app, "each table needs a changelog of its own")
}

// readinessSays runs app, sends one record to in, and waits until its
// readiness names want.
func readinessSays(t *testing.T, app *eskafka.App, in, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	runApp(t, app)
	cfg := app.Config()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: in, Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var last error
	for ctx.Err() == nil {
		if last = app.Readiness(); last != nil && strings.Contains(last.Error(), want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("readiness = %v; want it to name the mistake (%q)", last, want)
}

// Emitting to a topic missing from StageSpec.Outputs: the topic is never
// planned, and the stage used to retry forever on the broker's
// UNKNOWN_TOPIC_OR_PARTITION, which did not say what was wrong.
func TestEmitOutsideOutputsIsNamed(t *testing.T) {
	app := newApp(t, eskafka.AppConfig{})
	cfg := app.StageConfig("copy")
	app.AddStage(copier(cfg, "copy", cfg.Service+".elsewhere", &eskafka.Table{Prefix: "c/", Topic: cfg.Service + ".copy.changelog", Hashed: true}))
	readinessSays(t, app, cfg.Service+".copy.in", "not in its StageSpec.Outputs")
}

// Putting to a table missing from StageSpec.Tables: it is never restored,
// and what a transform kept there used to be gone after a restart,
// silently.
func TestUndeclaredTableIsNamed(t *testing.T) {
	app := newApp(t, eskafka.AppConfig{})
	cfg := app.StageConfig("copy")
	app.AddTopics(eskafka.TopicSpec{Name: cfg.Service + ".copy.undeclared", Configs: map[string]string{"cleanup.policy": "compact"}})
	app.AddStage(copier(cfg, "copy", cfg.Service+".copy.out", nil))
	readinessSays(t, app, cfg.Service+".copy.in", "not in its StageSpec.Tables")
}

// An expiring table must store keys under their partition: a lane sweeps
// the partitions it holds, and a hashed table's keys do not say theirs.
func TestExpiringHashedTableIsRefused(t *testing.T) {
	app := newApp(t, eskafka.AppConfig{})
	cfg := app.StageConfig("a")
	app.AddStage(copier(cfg, "a", cfg.Service+".a.out", &eskafka.Table{
		Prefix: "c/", Topic: cfg.Service + ".a.changelog", Hashed: true,
		Retention: time.Hour,
	}))
	planError(t, app, "expires entries but is Hashed")
}

// An aggregate or codecs with a field left out: Start used to accept it,
// and then every command was dead-lettered by the nil function's panic (a
// nil codec made Gateway.Send panic in the caller).
func TestIncompleteAggregateIsRefused(t *testing.T) {
	app := newApp(t, eskafka.AppConfig{})
	agg, c := counters, codecs
	agg.Decide, c.Command = nil, nil
	eskafka.Register(app, agg, c)
	planError(t, app, `aggregate "counters" lacks Aggregate.Decide, Codecs.Command`)
}

// A command whose Key is empty (an id left out) used to be decided as the
// aggregate "", silently: Send refuses it, and the processor refuses such
// a record from another producer.
func TestEmptyKeyIsRefused(t *testing.T) {
	e := start(t, newConfig(t))
	e.waitReady()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := e.gw.Send(ctx, open{ID: ""}, eskafka.SendOptions{MsgID: "m1"}); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("Send with an empty key = %v; want it refused", err)
	}
	if err := e.producer.ProduceSync(ctx, &kgo.Record{
		Topic: e.proc.Topics().Commands, Partition: eskafka.PartitionFor("", partitions), Key: []byte{}, Value: []byte(`{"type":"open","id":""}`),
		Headers: []kgo.RecordHeader{{Key: eskafka.HeaderMsgID, Value: []byte("m2")}},
	}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	res, err := e.gw.Await(ctx, eskafka.Sent{MsgID: "m2"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejection == nil || res.Rejection.Code != es.CodeMalformedCommand {
		t.Fatalf("a command record with an empty key: %+v; want it rejected as malformed", res.Outcome)
	}
}

// A StageSpec with a part left out: a nil table used to panic in AddStage
// on a nil pointer, two tables of one prefix mixed their keys silently, and
// a stage without a Transform dead-lettered every record.
func TestIncompleteStageIsRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*eskafka.StageSpec)
		want string
	}{
		{"no transform", func(s *eskafka.StageSpec) { s.Transform = nil }, "has no StageSpec.Transform"},
		{"no inputs", func(s *eskafka.StageSpec) { s.Inputs = nil }, "has no StageSpec.Inputs"},
		{"nil table", func(s *eskafka.StageSpec) { s.Tables = append(s.Tables, nil) }, "StageSpec.Tables[1] is nil"},
		{"one prefix", func(s *eskafka.StageSpec) {
			s.Tables = append(s.Tables, &eskafka.Table{Prefix: "c/", Topic: s.Tables[0].Topic + "2", Hashed: true})
		}, `two tables have the prefix "c/"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := newApp(t, eskafka.AppConfig{})
			cfg := app.StageConfig("a")
			table := &eskafka.Table{Prefix: "c/", Topic: cfg.Service + ".a.changelog", Hashed: true}
			spec := eskafka.StageSpec{Name: "a", Inputs: []string{cfg.Service + ".a.in"}, Tables: []*eskafka.Table{table},
				Transform: copyTransform{table: table, output: cfg.Service + ".a.out"}, Outputs: []string{cfg.Service + ".a.out"}}
			c.edit(&spec)
			app.AddStage(eskafka.NewStage(spec, cfg))
			planError(t, app, c.want)
		})
	}
}
