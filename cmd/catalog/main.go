// Command catalog runs the books catalog service: an event-sourced CQRS
// service on Kafka. With no configuration it starts an embedded Kafka broker
// under ./data and serves HTTP on localhost:9081.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bookscatalog/catalog/internal/config"
	"github.com/bookscatalog/catalog/internal/service"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "catalog:", err)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, err := config.Load(args, os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	svc, err := service.New(ctx, cfg, service.Options{})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
