package eskafka_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
)

// lockedBuffer is a bytes.Buffer a client's goroutines may log to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The client's level, not the service's, decides what a client logs:
// KAFKA_LOG_LEVEL=debug shows a client's requests under LOG_LEVEL=info.
func TestClientLoggerLogsAtTheClientsLevel(t *testing.T) {
	c, err := kfake.NewCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out lockedBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.WithLogger(eskafka.ClientLogger(log, kgo.LogLevelDebug)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	var debug bool
	for _, line := range strings.Split(out.String(), "\n") {
		if line == "" {
			continue
		}
		if !strings.Contains(line, "component=kafka-client") {
			t.Errorf("a client's line without component=kafka-client: %s", line)
		}
		debug = debug || strings.Contains(line, "level=DEBUG")
	}
	if !debug {
		t.Fatalf("no debug line from a client at debug level under an info handler:\n%s", out.String())
	}

	// At warn, a healthy client's ping logs nothing.
	var quiet lockedBuffer
	log = slog.New(slog.NewTextHandler(&quiet, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cl, err = kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.WithLogger(eskafka.ClientLogger(log, kgo.LogLevelWarn)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if s := quiet.String(); s != "" {
		t.Fatalf("a healthy client at warn logged:\n%s", s)
	}
}

// With Config.ClientLogLevel, a stage's clients log under the stage's
// name: a wait on a broker is traced to the stage that waited.
func TestStageClientsLogUnderTheStagesName(t *testing.T) {
	var out lockedBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app := newApp(t, eskafka.AppConfig{Config: eskafka.Config{Logger: log, ClientLogLevel: kgo.LogLevelInfo}})
	p := app.Config().Service + ".logged."
	app.AddStage(eskafka.NewStage(eskafka.StageSpec{
		Name: "logged", Inputs: []string{p + "in"}, Transform: copyTransform{output: p + "out"}, Outputs: []string{p + "out"},
	}, app.StageConfig("logged")))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	runApp(t, app)
	for !strings.Contains(out.String(), `msg=syncing stage=logged component=kafka-client`) {
		if ctx.Err() != nil {
			t.Fatalf("no client line of the stage's group join under stage=logged in a minute:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
