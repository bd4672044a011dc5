package schemacli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/internal/catalogavro"
	"github.com/bookscatalog/catalog/internal/schemacli"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// cluster is a broker (kfake, or the real Kafka of KAFKA_BROKERS) and a
// service name unique to the test, whose registry topic is removed after
// it.
type cluster struct {
	brokers []string
	service string
}

func newCluster(t *testing.T) cluster {
	t.Helper()
	c := cluster{brokers: kafkatest.Brokers(t), service: kafkatest.Service(t)}
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, c.topic())
	})
	return c
}

func (c cluster) topic() string { return c.service + ".schemas" }

// registry opens the registry topic as the service does (creating it).
func (c cluster) registry(t *testing.T) *schemaregistry.Registry {
	t.Helper()
	r, err := schemaregistry.New(t.Context(), c.brokers, c.topic(),
		schemaregistry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// env is the environment an operator's shell would give the command.
func (c cluster) env(k string) string {
	switch k {
	case "KAFKA_BROKERS":
		return strings.Join(c.brokers, ",")
	case "SERVICE_NAME":
		return c.service
	}
	return ""
}

// run runs `catalog schemas args...` and returns its stdout and stderr.
func run(t *testing.T, getenv func(string) string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	err := schemacli.Run(ctx, args, getenv, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func noEnv(string) string { return "" }

const (
	authorCreated = `{"type":"record","name":"AuthorCreated","namespace":"catalog.author","fields":[{"name":"code","type":"string"}]}`
	authorDeleted = `{"type":"record","name":"AuthorDeleted","namespace":"catalog.author","fields":[{"name":"code","type":"string"}]}`
	bookState     = `{"type":"record","name":"State","namespace":"catalog.book","fields":[{"name":"id","type":"string"}]}`
	// A second version of AuthorCreated.
	authorCreated2 = `{"type":"record","name":"AuthorCreated","namespace":"catalog.author","fields":[{"name":"code","type":"string"},{"name":"n","type":"long","default":0}]}`
)

func TestListAndDelete(t *testing.T) {
	c := newCluster(t)
	reg := c.registry(t)
	fps := map[string]uint64{}
	for _, js := range []string{bookState, authorDeleted, authorCreated2, authorCreated} {
		fp, err := reg.Register(t.Context(), js)
		if err != nil {
			t.Fatal(err)
		}
		fps[js] = fp
	}
	// Sorted by name, then fingerprint: the versions of a type together.
	type row struct {
		js   string
		name string
	}
	want := []row{{authorCreated, "catalog.author.AuthorCreated"}, {authorCreated2, "catalog.author.AuthorCreated"},
		{authorDeleted, "catalog.author.AuthorDeleted"}, {bookState, "catalog.book.State"}}
	if fps[authorCreated] > fps[authorCreated2] {
		want[0], want[1] = want[1], want[0]
	}
	var lines []string
	for _, r := range want {
		lines = append(lines, fmt.Sprintf("%016x %s %d", fps[r.js], r.name, len(r.js)))
	}

	// Connected by the environment alone.
	out, _, err := run(t, c.env, "list")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		got = append(got, strings.Join(strings.Fields(l), " "))
	}
	if strings.Join(got, "\n") != strings.Join(lines, "\n") {
		t.Errorf("list printed\n%s\nwant (columns aligned)\n%s", out, strings.Join(lines, "\n"))
	}

	// -json, connected by flags alone.
	flags := []string{"-kafka-brokers", strings.Join(c.brokers, ","), "-service-name", c.service}
	out, _, err = run(t, noEnv, append([]string{"list", "-json"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		Fingerprint string          `json:"fingerprint"`
		Name        string          `json:"name"`
		Size        int             `json:"size"`
		Schema      json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("list -json: %v\n%s", err, out)
	}
	if len(entries) != len(want) {
		t.Fatalf("list -json: %d entries, want %d", len(entries), len(want))
	}
	for i, e := range entries {
		var schema bytes.Buffer
		if err := json.Compact(&schema, e.Schema); err != nil {
			t.Fatal(err)
		}
		if e.Fingerprint != fmt.Sprintf("%016x", fps[want[i].js]) || e.Name != want[i].name || e.Size != len(want[i].js) || schema.String() != want[i].js {
			t.Errorf("entry %d: %+v, want %s", i, e, want[i].js)
		}
	}

	// Delete one; flags may follow the fingerprint.
	fp := fmt.Sprintf("%016x", fps[authorDeleted])
	out, _, err = run(t, noEnv, append([]string{"delete", fp}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "deleted "+fp+" (catalog.author.AuthorDeleted") || !strings.Contains(out, c.topic()) {
		t.Errorf("delete printed %q", out)
	}
	out, _, err = run(t, c.env, "list")
	if err != nil || strings.Contains(out, fp) || strings.Count(out, "\n") != 3 {
		t.Errorf("list after delete: %v\n%s", err, out)
	}
	// A running registry drops it when it next reads the topic.
	if err := reg.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Lookup(t.Context(), fps[authorDeleted]); !errors.Is(err, avro.ErrUnknownSchema) {
		t.Errorf("a running registry still has the deleted schema: %v", err)
	}

	// Refused: deleted already, never registered.
	_, _, err = run(t, c.env, "delete", fp)
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("delete again: %v", err)
	}
	_, _, err = run(t, c.env, "delete", "0x0123456789ABCDEF")
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "0123456789abcdef is not in the registry topic "+c.topic()) {
		t.Errorf("delete of an unknown fingerprint: %v", err)
	}
	if out, _, err := run(t, c.env, "list"); err != nil || strings.Count(out, "\n") != 3 {
		t.Errorf("list after refused deletes: %v\n%s", err, out)
	}
}

// The way out of a refused start: the refusal names the registered schema
// and the command that removes it; once it is removed, the codecs register.
func TestIncompatibleSchemaDeletedThenStartSucceeds(t *testing.T) {
	c := newCluster(t)
	ctx := t.Context()
	// A bad deploy registered AuthorCreated with code as a long: today's
	// code (a string) cannot read what it would have written.
	bad := `{"type":"record","name":"AuthorCreated","namespace":"catalog.author","fields":[{"name":"code","type":"long"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"}]}`
	badFP, err := c.registry(t).Register(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	start := func() error {
		reg := c.registry(t)
		c, err := catalogavro.New(reg)
		if err != nil {
			t.Fatal(err)
		}
		return avro.Register(ctx, c.AuthorEvents)
	}
	err = start()
	var ie *avro.IncompatibleError
	if !errors.As(err, &ie) || ie.Type != "catalog.author.AuthorCreated" || ie.Field != "code" || ie.Writer != badFP {
		t.Fatalf("start with the bad schema registered: %v", err)
	}
	cmd := "catalog schemas delete " + avro.FormatFingerprint(ie.Writer)
	if !strings.Contains(err.Error(), "`"+cmd+"`") {
		t.Fatalf("the refusal does not say %q: %v", cmd, err)
	}
	if _, _, err := run(t, c.env, strings.Fields(cmd)[2:]...); err != nil {
		t.Fatal(err)
	}
	if err := start(); err != nil {
		t.Fatalf("start after the delete: %v", err)
	}
}

// With nothing listening, the command says so, and where it looked.
func TestNothingAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	_, _, err = run(t, func(k string) string {
		if k == "EMBEDDED_KAFKA_ADDR" {
			return addr
		}
		return ""
	}, "list")
	if err == nil || !strings.Contains(err.Error(), "no Kafka broker answers at "+addr+" (EMBEDDED_KAFKA_ADDR; KAFKA_BROKERS is not set)") ||
		!strings.Contains(err.Error(), "catalog serve") {
		t.Errorf("embedded address: %v", err)
	}
	_, _, err = run(t, noEnv, "delete", "22380f514168155d", "-kafka-brokers", addr)
	if err == nil || !strings.Contains(err.Error(), "no Kafka broker answers at "+addr+" (KAFKA_BROKERS)") {
		t.Errorf("KAFKA_BROKERS: %v", err)
	}
}

// A service name without a registry topic is an error that says so, and
// the topic is not created.
func TestNoTopic(t *testing.T) {
	c := newCluster(t)
	_, _, err := run(t, c.env, "list")
	if err == nil || !strings.Contains(err.Error(), "no schema registry topic "+c.topic()) || !strings.Contains(err.Error(), "SERVICE_NAME") {
		t.Fatalf("err = %v", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	details, err := kadm.NewClient(cl).ListTopics(t.Context(), c.topic())
	if err != nil {
		t.Fatal(err)
	}
	if details.Has(c.topic()) {
		t.Errorf("topic %s created", c.topic())
	}
}

// Usage errors are found before connecting (no broker in these cases).
func TestArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"purge"}, `unknown command "purge"`},
		{[]string{"list", "extra"}, "unexpected arguments"},
		{[]string{"delete"}, "want one FINGERPRINT"},
		{[]string{"delete", "a", "b"}, "want one FINGERPRINT"},
		{[]string{"delete", "xyz"}, `fingerprint "xyz": want 16 hex digits`},
		{[]string{"delete", "0123456789abcdef0"}, "want 16 hex digits"},
		{[]string{"delete", "-1"}, "flag provided but not defined"},
		{[]string{"list", "-kafka-brokers", "nope"}, `KAFKA_BROKERS: "nope" is not host:port`},
		{[]string{"list", "-service-name", "a.b"}, `SERVICE_NAME: "a.b"`},
	} {
		_, _, err := run(t, noEnv, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	for _, args := range [][]string{{"-h"}, {"list", "-h"}, {"delete", "-h"}} {
		if _, stderr, err := run(t, noEnv, args...); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr, "kafka-brokers") && !strings.Contains(stderr, "catalog schemas") {
			t.Errorf("%q: %v, usage %q", args, err, stderr)
		}
	}
}
