package service_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/internal/service"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// TestRegistryConflictNamesTheWayOut: anyone who can write the registry
// topic can replace the JSON under one of the service's own fingerprints
// (a tombstone, then the same schema with a "doc": same canonical form,
// same fingerprint). The next start is refused, and the error names the
// way out, `catalog schemas delete`, as the incompatible-schema refusal
// does; before, it said only "fingerprint already registered with a
// different schema JSON", with the other JSON unclipped.
func TestRegistryConflictNamesTheWayOut(t *testing.T) {
	h := newHarness(t)
	inst := h.start()
	inst.stop()

	const fp = 0x22380f514168155d // catalog.author.AuthorCreated
	topic := h.Service + ".schemas"
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(h.Brokers...)}, h.ClientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	doc := `{"doc":"written by someone else","fields":[{"name":"code","type":"string"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"}],"name":"AuthorCreated","namespace":"catalog.author","type":"record"}`
	if err := cl.ProduceSync(ctx,
		&kgo.Record{Topic: topic, Key: schemaregistry.Key(fp)},
		&kgo.Record{Topic: topic, Key: schemaregistry.Key(fp), Value: []byte(doc)},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := h.config(h.DataDir)
	cfg.AdvertisedURL = "http://" + ln.Addr().String()
	svc, err := service.New(ctx, cfg, service.Options{Listener: ln, ClientOpts: h.ClientOpts})
	if err == nil {
		sctx, scancel := context.WithCancel(context.Background())
		scancel()
		_ = svc.Run(sctx)
		t.Fatal("start-up was not refused with another JSON under one of its fingerprints")
	}
	if !strings.Contains(err.Error(), "catalog schemas delete 22380f514168155d") {
		t.Errorf("start-up refused without naming the way out (catalog schemas delete 22380f514168155d):\n%v", err)
	}
}
