// Package schemacli implements `catalog schemas`, the operators' commands on
// the schema registry topic ({SERVICE_NAME}.schemas, docs/wire-format.md
// §3):
//
//	catalog schemas list [-json]          the registered schemas
//	catalog schemas delete FINGERPRINT    remove one registered by mistake
//
// Deleting is the way out when a schema in the topic keeps the service from
// starting (its refusal names the fingerprint): a deploy registered a schema
// that today's code cannot read, say, and rolling back now fails. It writes
// a tombstone, which every registry reads as "no schema for this
// fingerprint"; records written with that schema can no longer be read.
//
// The commands connect as the service does, with the same variables and
// flags: KAFKA_BROKERS when set, with the KAFKA_TLS_* and KAFKA_SASL_*
// settings (kafkasec), else the embedded broker's address
// EMBEDDED_KAFKA_ADDR (that broker answers only while a service without
// KAFKA_BROKERS runs it) with the credentials kept in DATA_DIR, and
// SERVICE_NAME for the topic. internal/config is not used because it reads
// (and validates) the whole service's settings, and the commands need a
// few of them.
package schemacli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/embedded"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/kafkasec"
	"github.com/bookscatalog/catalog/schemaregistry"
)

const usage = `usage:
  catalog schemas list [-json] [flags]        list the registered schemas: fingerprint, full name, size in bytes
  catalog schemas delete [flags] FINGERPRINT  remove a schema registered by mistake (writes a tombstone)

FINGERPRINT is 16 hex digits, as the list and the service's messages print it.
Records written with a deleted schema can no longer be read.

Flags -kafka-brokers, -embedded-kafka-addr, -data-dir, -service-name and
-kafka-tls-*, -kafka-sasl-* default to KAFKA_BROKERS, EMBEDDED_KAFKA_ADDR,
DATA_DIR, SERVICE_NAME and KAFKA_TLS_*, KAFKA_SASL_*, as for the service;
-timeout (30s) bounds the whole command. "catalog schemas list -h" describes them.
`

// Run runs `catalog schemas` with the arguments that follow "schemas",
// reading the variables through getenv, printing results to stdout and
// usage and warnings (such as invalid registry records met on the way) to
// stderr. -h is flag.ErrHelp.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("schemas: missing command: list or delete")
	}
	switch args[0] {
	case "list":
		return list(ctx, args[1:], getenv, stdout, stderr)
	case "delete":
		return del(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("schemas: unknown command %q: want list or delete", args[0])
}

// conn is where the commands find the registry.
type conn struct {
	brokers  []string
	embedded bool // brokers is EMBEDDED_KAFKA_ADDR: KAFKA_BROKERS is not set
	dataDir  string
	sec      kafkasec.Config
	service  string
	timeout  time.Duration
}

// topic returns the registry topic's name, as the service names it.
func (c conn) topic() string { return c.service + ".schemas" }

// flags declares the connection flags on fs, defaulting to the variables;
// the returned function validates them once fs is parsed.
func flags(fs *flag.FlagSet, getenv func(string) string) func() (conn, error) {
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	brokers := fs.String("kafka-brokers", env("KAFKA_BROKERS", ""), "comma-separated Kafka bootstrap servers; empty: the embedded broker at -embedded-kafka-addr (KAFKA_BROKERS)")
	embedded := fs.String("embedded-kafka-addr", env("EMBEDDED_KAFKA_ADDR", "127.0.0.1:9092"), "the embedded broker's address, used when -kafka-brokers is empty (EMBEDDED_KAFKA_ADDR)")
	service := fs.String("service-name", env("SERVICE_NAME", "catalog"), "the service whose registry topic <name>.schemas to use (SERVICE_NAME)")
	dataDir := fs.String("data-dir", env("DATA_DIR", "./data"), "the service's DATA_DIR, where the embedded broker's credentials are (DATA_DIR)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	sec := kafkasec.Flags(fs, getenv)
	return func() (conn, error) {
		c := conn{service: *service, timeout: *timeout, dataDir: *dataDir}
		var err error
		if c.sec, err = sec(); err != nil {
			return c, err
		}
		for _, b := range strings.Split(*brokers, ",") {
			if b = strings.TrimSpace(b); b != "" {
				if _, _, err := net.SplitHostPort(b); err != nil {
					return c, fmt.Errorf("KAFKA_BROKERS: %q is not host:port", b)
				}
				c.brokers = append(c.brokers, b)
			}
		}
		if len(c.brokers) == 0 {
			if _, _, err := net.SplitHostPort(*embedded); err != nil {
				return c, fmt.Errorf("EMBEDDED_KAFKA_ADDR: %q is not host:port", *embedded)
			}
			c.brokers, c.embedded = []string{*embedded}, true
			if c.sec.Enabled() {
				return c, errors.New("the KAFKA_TLS_* and KAFKA_SASL_* settings are for KAFKA_BROKERS, which is not set: the embedded broker uses its own credentials, kept in DATA_DIR")
			}
		}
		if !validName(c.service) {
			return c, fmt.Errorf("SERVICE_NAME: %q must be letters, digits, '-' or '_' (it prefixes topic names)", c.service)
		}
		if c.timeout <= 0 {
			return c, fmt.Errorf("-timeout: %s must be positive", c.timeout)
		}
		return c, nil
	}
}

// validName is config's rule for SERVICE_NAME: a name the service would
// not accept cannot have a registry topic.
func validName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// parse parses args with fs, allowing flags after the positional
// arguments (catalog schemas delete FP -service-name x), and returns the
// positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// open connects to the registry topic, which must exist: a tool pointed at
// the wrong broker or service name should say so rather than create it.
func open(ctx context.Context, c conn, stderr io.Writer) (*schemaregistry.Registry, error) {
	if err := reachable(ctx, c); err != nil {
		return nil, err
	}
	if c.embedded {
		// Checked after reachable: with no broker there, that is
		// the news, not missing credentials.
		creds, err := embedded.Credentials(c.dataDir)
		if err != nil {
			return nil, fmt.Errorf("the embedded broker at %s answers, but its credentials are not in DATA_DIR %s: set DATA_DIR (or -data-dir) to the service's: %w",
				c.brokers[0], c.dataDir, err)
		}
		c.sec = kafkasec.Config{SASL: creds}
	}
	secOpts, err := c.sec.ClientOpts()
	if err != nil {
		return nil, fmt.Errorf("kafka security: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Batches are bounded as the service bounds them: a few KiB of zstd
	// on the topic would otherwise decompress to up to franz-go's 1 GiB.
	reg, err := schemaregistry.New(ctx, c.brokers, c.topic(), schemaregistry.WithExistingTopic(), schemaregistry.WithLogger(log),
		schemaregistry.WithClientOpts(append(secOpts, kgo.MaxDecompressBatchBytes(eskafka.MaxBatchBytes))...))
	if errors.Is(err, schemaregistry.ErrNoTopic) {
		return nil, fmt.Errorf("no schema registry topic %s at %s: is SERVICE_NAME (%s) right? (the service creates the topic when it first starts)",
			c.topic(), strings.Join(c.brokers, ","), c.service)
	}
	if err != nil {
		return nil, fmt.Errorf("open the schema registry %s at %s: %w", c.topic(), strings.Join(c.brokers, ","), err)
	}
	return reg, nil
}

// reachable checks that at least one broker accepts a connection. Without
// it, a Kafka client retries until the timeout and then reports only that
// the time is up, which does not tell "nothing listens there" (the usual
// case: the embedded broker's service is not running) from a slow cluster.
func reachable(ctx context.Context, c conn) error {
	var errs []error
	for _, b := range c.brokers {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		nc, err := (&net.Dialer{}).DialContext(dctx, "tcp", b)
		cancel()
		if err == nil {
			_ = nc.Close()
			return nil
		}
		errs = append(errs, err)
	}
	if c.embedded {
		return fmt.Errorf("no Kafka broker answers at %s (EMBEDDED_KAFKA_ADDR; KAFKA_BROKERS is not set): the embedded broker exists only while "+
			"`catalog serve` runs without KAFKA_BROKERS: start it, or set KAFKA_BROKERS to your cluster: %w", c.brokers[0], errors.Join(errs...))
	}
	return fmt.Errorf("no Kafka broker answers at %s (KAFKA_BROKERS): %w", strings.Join(c.brokers, ","), errors.Join(errs...))
}

// entry is one registered schema, as list prints it.
type entry struct {
	Fingerprint string          `json:"fingerprint"`
	Name        string          `json:"name"`
	Size        int             `json:"size"`
	Schema      json.RawMessage `json:"schema"`
}

// entries returns the schemas reg holds, sorted by name and then
// fingerprint, so that the versions of one type are listed together.
func entries(ctx context.Context, reg *schemaregistry.Registry) ([]entry, error) {
	all, err := reg.All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(all))
	for fp, js := range all {
		name := "?"
		// The registry holds only schemas that parse; "?" is for the
		// impossible case, which should not hide the others.
		if s, err := avro.ParseSchema(js); err == nil {
			name = s.Name()
		}
		out = append(out, entry{Fingerprint: avro.FormatFingerprint(fp), Name: name, Size: len(js), Schema: json.RawMessage(js)})
	}
	slices.SortFunc(out, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})
	return out, nil
}

func list(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("catalog schemas list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print a JSON array of {fingerprint, name, size, schema}")
	connFlags := flags(fs, getenv)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("schemas list: unexpected arguments %q", pos)
	}
	c, err := connFlags()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	reg, err := open(ctx, c, stderr)
	if err != nil {
		return err
	}
	defer reg.Close()
	es, err := entries(ctx, reg)
	if err != nil {
		return fmt.Errorf("schemas list: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(es); err != nil {
			return fmt.Errorf("schemas list: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", e.Fingerprint, e.Name, e.Size)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("schemas list: %w", err)
	}
	return nil
}

// parseFingerprint reads a fingerprint as list and the service's messages
// print it: hex, 16 digits (an optional 0x, and fewer digits for leading
// zeros, are accepted).
func parseFingerprint(s string) (uint64, error) {
	h := strings.TrimPrefix(strings.ToLower(s), "0x")
	fp, err := strconv.ParseUint(h, 16, 64)
	if err != nil || h == "" || len(h) > 16 {
		return 0, fmt.Errorf("fingerprint %q: want 16 hex digits, such as 22380f514168155d (catalog schemas list prints them)", s)
	}
	return fp, nil
}

func del(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("catalog schemas delete", flag.ContinueOnError)
	fs.SetOutput(stderr)
	connFlags := flags(fs, getenv)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("schemas delete: want one FINGERPRINT, got %d arguments", len(pos))
	}
	fp, err := parseFingerprint(pos[0])
	if err != nil {
		return fmt.Errorf("schemas delete: %w", err)
	}
	c, err := connFlags()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	reg, err := open(ctx, c, stderr)
	if err != nil {
		return err
	}
	defer reg.Close()
	// What is being deleted, for the confirmation: the operator should
	// see the name of the type whose schema is gone.
	what := "an invalid record"
	if es, err := entries(ctx, reg); err == nil {
		for _, e := range es {
			if e.Fingerprint == avro.FormatFingerprint(fp) {
				what = fmt.Sprintf("%s, %d bytes", e.Name, e.Size)
			}
		}
	}
	if err := reg.Delete(ctx, fp); err != nil {
		if errors.Is(err, avro.ErrUnknownSchema) {
			return fmt.Errorf("schemas delete: refused: %w (catalog schemas list shows the registered fingerprints)", err)
		}
		return fmt.Errorf("schemas delete: %w", err)
	}
	fmt.Fprintf(stdout, "deleted %s (%s) from %s; records written with it can no longer be read\n", avro.FormatFingerprint(fp), what, c.topic())
	return nil
}
