// Command catalog runs the books catalog service: an event-sourced CQRS
// service on Kafka. With no configuration it starts an embedded Kafka broker
// under ./data and serves HTTP on localhost:9081.
//
//	catalog [flags]          run the service (flags: catalog -h)
//	catalog serve [flags]    the same
//	catalog loadgen [flags]  drive a running service with load and report
//	                         throughput and latency (catalog loadgen -h)
//	catalog schemas list [-json]
//	catalog schemas delete FINGERPRINT
//	                         list the schema registry topic's schemas, or
//	                         remove one registered by mistake (catalog
//	                         schemas -h)
//	catalog baseline eos|http [flags]
//	                         the bare exactly-once loop and HTTP server the
//	                         service is measured against (catalog baseline -h)
//	catalog tokens new ROLE SUBJECT
//	catalog tokens hash < token
//	                         make a bearer token and its line for
//	                         AUTH_TOKENS_FILE, or hash a token
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bookscatalog/catalog/auth"
	"github.com/bookscatalog/catalog/internal/baseline"
	"github.com/bookscatalog/catalog/internal/config"
	"github.com/bookscatalog/catalog/internal/loadgen"
	"github.com/bookscatalog/catalog/internal/schemacli"
	"github.com/bookscatalog/catalog/internal/service"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // the usage asked for is printed
		}
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return serve(args[1:])
		case "loadgen":
			return runLoadgen(args[1:])
		case "schemas":
			return runSchemas(args[1:])
		case "baseline":
			return runBaseline(args[1:])
		case "tokens":
			return auth.TokensCommand(args[1:], os.Stdin, os.Stdout, os.Stderr)
		}
	}
	return serve(args)
}

// serve runs the service until SIGINT or SIGTERM.
func serve(args []string) error {
	cfg, err := config.Load(args, os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	svc, err := service.New(ctx, cfg, service.Options{})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// runLoadgen runs the load generator until its end or SIGINT/SIGTERM (which
// still prints the report of what was done).
func runLoadgen(args []string) error {
	opts, err := loadgen.ParseArgs(args, os.Stderr)
	if err != nil {
		return err
	}
	opts.Progress = os.Stderr
	ctx, stop := signalContext()
	defer stop()
	_, err = loadgen.Run(ctx, opts, os.Stdout)
	return err
}

// runSchemas runs the operators' commands on the schema registry topic,
// connecting as serve would (KAFKA_BROKERS, EMBEDDED_KAFKA_ADDR,
// SERVICE_NAME, or their flags).
func runSchemas(args []string) error {
	ctx, stop := signalContext()
	defer stop()
	return schemacli.Run(ctx, args, os.Getenv, os.Stdout, os.Stderr)
}

// runBaseline runs a baseline of docs/performance.md until SIGINT or
// SIGTERM.
func runBaseline(args []string) error {
	ctx, stop := signalContext()
	defer stop()
	return baseline.Main(ctx, args, os.Stderr)
}

// signalContext returns a context ended by the first SIGINT or SIGTERM,
// which asks for a graceful stop. That signal also gives the next one its
// default effect back: should the graceful stop take too long (Kafka does
// not answer), a second Ctrl-C or SIGTERM ends the process at once, as a
// crash would, which the service recovers from at its next start.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-signals:
			signal.Stop(signals)
			cancel()
		case <-ctx.Done():
			signal.Stop(signals)
		}
	}()
	return ctx, cancel
}
