package baseline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Defaults of the command line.
const (
	DefaultBrokers = "localhost:9092"
	DefaultService = "catalog"
	DefaultListen  = "localhost:9082"
)

const usage = `usage:
  catalog baseline eos [-brokers HOST:PORT,...] [-service NAME] [-partitions N] [-id ID] [-overlap]
      the bare exactly-once loop: consumes {service}.authors.commands and, per
      command, writes one event and one accepted outcome in one transaction
      with the offsets (creates its three topics when missing); -overlap
      keeps two transactions in flight, on two producers in turn
  catalog baseline http [-listen ADDR]
      the bare HTTP server: GET /authors/{code} from a map, POST /authors into it

Both run until SIGINT or SIGTERM. They are what the service is measured
against (docs/performance.md, scripts/bench), not services: no security, no
persistence. "catalog baseline eos -h" describes the flags.
`

// Main runs `catalog baseline` with the arguments that follow "baseline"
// until ctx is done, logging to stderr. -h gives flag.ErrHelp.
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errors.New("baseline: want eos or http")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("baseline", args[0])
	switch args[0] {
	case "eos":
		return mainEOS(ctx, args[1:], stderr, log)
	case "http":
		return mainHTTP(ctx, args[1:], stderr, log)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("baseline: unknown baseline %q (want eos or http)", args[0])
}

func mainEOS(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("catalog baseline eos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", DefaultBrokers, "comma-separated Kafka bootstrap servers (plain text)")
	var cfg EOSConfig
	fs.StringVar(&cfg.Service, "service", DefaultService, "topic prefix: consumes {service}.authors.commands, writes .events and .results")
	partitions := fs.Int("partitions", DefaultPartitions, "partition count of the topics it creates (all of a service's topics have the same)")
	fs.StringVar(&cfg.InstanceID, "id", DefaultInstanceID, "instance id in the transactional id {service}.baseline-eos.{id}")
	fs.IntVar(&cfg.MaxBatch, "max-batch", DefaultMaxBatch, "most records in one transaction")
	fs.BoolVar(&cfg.Overlap, "overlap", false, "two transactional producers in turn, each batch produced while the previous one commits")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("baseline eos: unexpected arguments %q", fs.Args())
	}
	for b := range strings.SplitSeq(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Brokers = append(cfg.Brokers, b)
		}
	}
	if *partitions < 1 || *partitions > 10000 {
		return fmt.Errorf("baseline eos: -partitions %d: want 1 to 10000", *partitions)
	}
	cfg.Partitions = int32(*partitions)
	cfg.Logger = log
	return RunEOS(ctx, cfg)
}

func mainHTTP(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("catalog baseline http", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", DefaultListen, "address to serve HTTP on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("baseline http: unexpected arguments %q", fs.Args())
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("baseline http: %w", err)
	}
	// Only a bound on idle header reads, which costs a request nothing.
	srv := &http.Server{Handler: HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "addr", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("baseline http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("baseline http: shutdown: %w", err)
	}
	return nil
}
