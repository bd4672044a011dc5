package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/internal/config"
	"github.com/bookscatalog/catalog/internal/service"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// The operator's way out of a refused start, end to end: a schema in the
// registry topic that today's AuthorCreated cannot read keeps the service
// from starting, the refusal names the command that removes it, and once
// `catalog schemas delete` ran, the service starts.
func TestSchemasDeleteUnblocksStart(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	name := kafkatest.Service(t)
	t.Cleanup(func() { deleteTopicsOf(brokers, name) })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// A bad deploy registered AuthorCreated with code as a long.
	reg, err := schemaregistry.New(ctx, brokers, name+".schemas",
		schemaregistry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	badFP, err := reg.Register(ctx, `{"type":"record","name":"AuthorCreated","namespace":"catalog.author","fields":[`+
		`{"name":"code","type":"long"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"}]}`)
	reg.Close()
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := config.Load(nil, func(k string) string {
		if k == "LOG_LEVEL" {
			return "error"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Brokers, cfg.Service, cfg.DataDir, cfg.HTTPAddr, cfg.Partitions = brokers, name, t.TempDir(), "127.0.0.1:0", 1
	_, err = service.New(ctx, cfg, service.Options{})
	cmd := "catalog schemas delete " + avro.FormatFingerprint(badFP)
	if !errors.Is(err, avro.ErrIncompatible) || !strings.Contains(err.Error(), "catalog.author.AuthorCreated at field code") ||
		!strings.Contains(err.Error(), "`"+cmd+"`") {
		t.Fatalf("start with the bad schema registered: %v; want a refusal naming the type, the field and %q", err, cmd)
	}

	args := append(strings.Fields(cmd)[1:], "-kafka-brokers", strings.Join(brokers, ","), "-service-name", name)
	if err := run(args); err != nil {
		t.Fatal(err)
	}

	svc, err := service.New(ctx, cfg, service.Options{})
	if err != nil {
		t.Fatalf("start after the delete: %v", err)
	}
	stopped, stop := context.WithCancel(ctx)
	stop()
	if err := svc.Run(stopped); err != nil {
		t.Error(err)
	}
}

// deleteTopicsOf removes a test service's topics from a shared (real)
// cluster; kfake goes away with the test anyway.
func deleteTopicsOf(brokers []string, service string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return
	}
	var mine []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, service+".") {
			mine = append(mine, t)
		}
	}
	_, _ = adm.DeleteTopics(ctx, mine...)
}
