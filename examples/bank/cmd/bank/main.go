// Command bank runs the bank example on an embedded Kafka broker, in
// memory: accounts with deposits and withdrawals that never overdraw, and
// each customer's balance summed over their accounts.
//
//	go run ./examples/bank/cmd/bank [-http localhost:9082]
//
// Then, for instance:
//
//	curl -i -X POST localhost:9082/accounts -H 'Content-Type: application/json' -d '{"id":"a1","customer":"alice"}'
//	curl -X POST localhost:9082/accounts/a1/deposits -H 'Content-Type: application/json' -d '{"amount":100}'
//	curl -X POST localhost:9082/accounts/a1/withdrawals -H 'Content-Type: application/json' -d '{"amount":500}'   # 422 insufficient_funds
//	curl localhost:9082/customers/alice/balance
//
// Everything is lost when it stops: the broker keeps no files, and the
// service's stores are in memory (rebuilt from the broker at each start).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bookscatalog/catalog/embedded"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/examples/bank/bankservice"
	"github.com/bookscatalog/catalog/httpapi"
	"github.com/bookscatalog/catalog/ids"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bank:", err)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("bank", flag.ContinueOnError)
	httpAddr := fs.String("http", "localhost:9082", "the HTTP API's listen address")
	partitions := fs.Int("partitions", 3, "the partition count of every topic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// A broker in this process, on a free loopback port, with random
	// SASL credentials that only this process knows.
	broker, err := embedded.Start("127.0.0.1:0", "")
	if err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	defer broker.Close()
	clientOpts, err := broker.Client().ClientOpts()
	if err != nil {
		return fmt.Errorf("kafka client options: %w", err)
	}

	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *httpAddr, err)
	}
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	bank, err := bankservice.New(tctx, bankservice.Config{
		App: eskafka.AppConfig{Config: eskafka.Config{
			Brokers: []string{broker.Addr()}, ClientOpts: clientOpts, Service: "bank",
			// A fresh instance id: nothing survives a restart anyway.
			InstanceID: ids.New(), Partitions: int32(*partitions), Logger: log,
		}},
		HTTP: httpapi.Config{Logger: log, AllowedHosts: httpapi.DefaultAllowedHosts(*httpAddr, "")},
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer bank.Close()

	srv := httpapi.NewServer(bank.Handler(), httpapi.ServerConfig{Logger: log})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	runErr := make(chan error, 1)
	appCtx, stopApp := context.WithCancel(context.WithoutCancel(ctx))
	defer stopApp()
	go func() { runErr <- bank.Run(appCtx) }()
	log.Info("bank serving", "http", "http://"+ln.Addr().String(), "kafka", broker.Addr())

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	case err = <-runErr:
		runErr <- err // for the wait below
	}
	// The HTTP server stops first, while the stages still run: a write
	// in flight still gets its outcome.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer scancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		log.Warn("http shutdown", "err", serr)
	}
	stopApp()
	if rerr := <-runErr; err == nil {
		err = rerr
	}
	return err
}
