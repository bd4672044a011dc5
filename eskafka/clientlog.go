package eskafka

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ClientLogger returns a franz-go logger writing to l what the Kafka
// clients log at level or more severe, under the attribute
// component=kafka-client. It is how an operator sees what a client
// asked which broker and what came back (a coordinator moving, a
// request retried) when a stage waits and the service's own logs do
// not say why; "debug" logs every request.
func ClientLogger(l *slog.Logger, level kgo.LogLevel) kgo.Logger {
	return clientLogger{log: l.With("component", "kafka-client"), level: level}
}

type clientLogger struct {
	log   *slog.Logger
	level kgo.LogLevel
}

func (c clientLogger) Level() kgo.LogLevel { return c.level }

func (c clientLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	sl := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		sl = slog.LevelError
	case kgo.LogLevelWarn:
		sl = slog.LevelWarn
	case kgo.LogLevelInfo:
		sl = slog.LevelInfo
	}
	// The client's own level decides what is logged: a slog handler
	// set to info must not drop what KAFKA_LOG_LEVEL=debug asked for.
	r := slog.NewRecord(time.Now(), sl, msg, 0)
	r.Add(keyvals...)
	_ = c.log.Handler().Handle(context.Background(), r)
}
