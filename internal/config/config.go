// Package config reads the service's configuration from environment
// variables (listed in docs/running.md, "Configuration"), with flags of the
// same meaning taking precedence.
package config

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bookscatalog/catalog/kafkasec"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is the service's configuration.
type Config struct {
	// Brokers are Kafka bootstrap servers; empty runs the embedded broker.
	Brokers []string
	// EmbeddedAddr is where the embedded broker listens.
	EmbeddedAddr string
	// HTTPAddr is the HTTP listen address.
	HTTPAddr string
	// AdvertisedURL is how other instances reach this one.
	AdvertisedURL string
	// DataDir holds the local stores (and the embedded broker's log).
	DataDir string
	// Service prefixes topics and consumer groups.
	Service string
	// Partitions and ReplicationFactor apply to topics the service creates.
	Partitions        int32
	ReplicationFactor int16
	// LogLevel and LogFormat ("text" or "json") shape the logs.
	LogLevel  slog.Level
	LogFormat string
	// KafkaLogLevel is what the Kafka clients themselves log
	// (KAFKA_LOG_LEVEL, none by default), to the same output.
	KafkaLogLevel kgo.LogLevel
	// WriteTimeout bounds how long an HTTP write waits for its outcome.
	WriteTimeout time.Duration
	// AllowedHosts are the host names and addresses HTTP requests may
	// name in Host (ALLOWED_HOSTS); empty means the default the service
	// computes from HTTP_ADDR and ADVERTISED_URL, "*" means any.
	AllowedHosts []string
	// HTTPMaxConns bounds the open HTTP connections.
	HTTPMaxConns int
	// HTTPMaxPerClient bounds the requests handled at once from one
	// client address (httpapi.ServerConfig.MaxRequestsPerClient).
	HTTPMaxPerClient int
	// OutcomeCacheBytes bounds the memory of the outcomes kept for
	// writers to look up.
	OutcomeCacheBytes int64
	// StallTimeout is how long a stage may have lag without committing
	// before /readyz reports it stuck.
	StallTimeout time.Duration
	// Lanes is how many transactions each stage keeps in flight on this
	// instance (eskafka.Config.Lanes).
	Lanes int
	// Overlap keeps two transactions of each lane in flight
	// (eskafka.Config.Overlap).
	Overlap bool
	// ProjectionLinger is how long a read model's stage waits for more
	// events after the first of a batch (projection.WithLinger).
	ProjectionLinger time.Duration
	// StreamMaxSubscribers bounds the web page's live event streams open
	// at once, and StreamMaxPerClient those of one client.
	StreamMaxSubscribers int
	StreamMaxPerClient   int
	// Kafka is how the service's Kafka clients connect to KAFKA_BROKERS:
	// TLS and SASL (KAFKA_TLS_*, KAFKA_SASL_*). The embedded broker
	// has credentials of its own, in DATA_DIR.
	Kafka kafkasec.Config
	// HTTPSecurity is who may use the HTTP API (AUTH_*), HTTPS (TLS_*),
	// the operator listener (ADMIN_ADDR) and the trust between instances
	// (CLUSTER_SECRET): docs/security.md.
	HTTPSecurity
}

// Load reads the configuration from getenv and args (flags), validating
// every value; an error names the variable and what is wrong with it.
func Load(args []string, getenv func(string) string) (Config, error) {
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("catalog", flag.ContinueOnError)
	brokers := fs.String("kafka-brokers", env("KAFKA_BROKERS", ""), "comma-separated Kafka bootstrap servers; empty runs an embedded broker (KAFKA_BROKERS)")
	embedded := fs.String("embedded-kafka-addr", env("EMBEDDED_KAFKA_ADDR", "127.0.0.1:9092"), "listen address of the embedded broker (EMBEDDED_KAFKA_ADDR)")
	httpAddr := fs.String("http-addr", env("HTTP_ADDR", "localhost:9081"), "HTTP listen address (HTTP_ADDR)")
	advertised := fs.String("advertised-url", env("ADVERTISED_URL", ""), "URL other instances reach this one at; default http://<HTTP_ADDR> (ADVERTISED_URL)")
	dataDir := fs.String("data-dir", env("DATA_DIR", "./data"), "directory of local stores and the embedded broker's log (DATA_DIR)")
	service := fs.String("service-name", env("SERVICE_NAME", "catalog"), "topic prefix and consumer group (SERVICE_NAME)")
	partitions := fs.String("partitions", env("PARTITIONS", "6"), "partitions of the topics it creates (PARTITIONS)")
	rf := fs.String("replication-factor", env("REPLICATION_FACTOR", "1"), "replication factor of the topics it creates (REPLICATION_FACTOR)")
	level := fs.String("log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (LOG_LEVEL)")
	kafkaLevel := fs.String("kafka-log-level", env("KAFKA_LOG_LEVEL", "none"), "what the Kafka clients log: none, error, warn, info or debug (KAFKA_LOG_LEVEL)")
	format := fs.String("log-format", env("LOG_FORMAT", "text"), "text or json (LOG_FORMAT)")
	writeTimeout := fs.String("write-timeout", env("WRITE_TIMEOUT", "10s"), "how long an HTTP write waits for its outcome (WRITE_TIMEOUT)")
	allowedHosts := fs.String("allowed-hosts", env("ALLOWED_HOSTS", ""), "comma-separated hosts HTTP requests may name, \"*\" for any; default localhost and the hosts of HTTP_ADDR and ADVERTISED_URL, or any when HTTP_ADDR listens on all interfaces (ALLOWED_HOSTS)")
	maxConns := fs.String("http-max-conns", env("HTTP_MAX_CONNS", "1000"), "most HTTP connections open at once (HTTP_MAX_CONNS)")
	maxPerClient := fs.String("http-max-per-client", env("HTTP_MAX_PER_CLIENT", "256"), "most HTTP requests handled at once from one client address; behind a reverse proxy, raise it to HTTP_MAX_CONNS (HTTP_MAX_PER_CLIENT)")
	outcomeCache := fs.String("outcome-cache-mb", env("OUTCOME_CACHE_MB", "64"), "MiB of memory for outcomes kept for lookup (OUTCOME_CACHE_MB)")
	stallTimeout := fs.String("stall-timeout", env("STALL_TIMEOUT", "30s"), "how long a stage may lag without committing before /readyz reports it (STALL_TIMEOUT)")
	lanes := fs.String("stage-lanes", env("STAGE_LANES", "1"), "transactions each stage keeps in flight on this instance, each on its own partitions (STAGE_LANES)")
	overlap := fs.String("stage-overlap", env("STAGE_OVERLAP", "true"), "overlap each lane's transactions: the next batch is produced while the last one commits; false commits one at a time (STAGE_OVERLAP)")
	projLinger := fs.String("projection-linger", env("PROJECTION_LINGER", "25ms"), "how long a read model's stage waits for more events after the first of a batch, 0 to 1s; the read models lag writes by up to this (PROJECTION_LINGER)")
	streamMax := fs.String("stream-max-subscribers", env("STREAM_MAX_SUBSCRIBERS", "100"), "most live event streams open at once (STREAM_MAX_SUBSCRIBERS)")
	streamPerClient := fs.String("stream-max-per-client", env("STREAM_MAX_PER_CLIENT", "4"), "most live event streams one client may open (STREAM_MAX_PER_CLIENT)")
	kafkaSec := kafkasec.Flags(fs, getenv)
	httpSec := httpSecurityFlags(fs, env)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: catalog [flags]
  runs the service; every flag is also read from the environment variable
  named in its parentheses, and the flag wins.
other commands (each with -h): catalog loadgen, catalog schemas list|delete,
  catalog baseline eos|http, catalog tokens new|hash.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c := Config{EmbeddedAddr: *embedded, HTTPAddr: *httpAddr, DataDir: *dataDir, Service: *service, LogFormat: *format}
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if _, _, err := net.SplitHostPort(b); err != nil {
				return c, fmt.Errorf("KAFKA_BROKERS: %q is not host:port", b)
			}
			c.Brokers = append(c.Brokers, b)
		}
	}
	if _, _, err := net.SplitHostPort(c.EmbeddedAddr); err != nil {
		return c, fmt.Errorf("EMBEDDED_KAFKA_ADDR: %q is not host:port", c.EmbeddedAddr)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return c, fmt.Errorf("HTTP_ADDR: %q is not host:port", c.HTTPAddr)
	}
	c.AdvertisedURL = *advertised
	if c.AdvertisedURL == "" {
		c.AdvertisedURL = "http://" + c.HTTPAddr
	}
	if u, err := url.Parse(c.AdvertisedURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("ADVERTISED_URL: %q is not an http(s) URL", c.AdvertisedURL)
	}
	c.AdvertisedURL = strings.TrimSuffix(c.AdvertisedURL, "/")
	if c.DataDir == "" {
		return c, fmt.Errorf("DATA_DIR: must not be empty")
	}
	if !validName(c.Service) {
		return c, fmt.Errorf("SERVICE_NAME: %q must be letters, digits, '-' or '_' (it prefixes topic names)", c.Service)
	}
	p, err := strconv.ParseInt(*partitions, 10, 32)
	if err != nil || p < 1 || p > 10000 {
		return c, fmt.Errorf("PARTITIONS: %q must be an integer from 1 to 10000", *partitions)
	}
	c.Partitions = int32(p)
	r, err := strconv.ParseInt(*rf, 10, 16)
	if err != nil || r < 1 {
		return c, fmt.Errorf("REPLICATION_FACTOR: %q must be a positive integer", *rf)
	}
	c.ReplicationFactor = int16(r)
	if err := c.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return c, fmt.Errorf("LOG_LEVEL: %q must be debug, info, warn or error", *level)
	}
	if c.KafkaLogLevel, err = parseKafkaLogLevel(*kafkaLevel); err != nil {
		return c, fmt.Errorf("KAFKA_LOG_LEVEL: %w", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("LOG_FORMAT: %q must be text or json", c.LogFormat)
	}
	d, err := time.ParseDuration(*writeTimeout)
	if err != nil || d <= 0 {
		return c, fmt.Errorf("WRITE_TIMEOUT: %q must be a positive duration such as 10s", *writeTimeout)
	}
	c.WriteTimeout = d
	if c.AllowedHosts, err = parseHosts(*allowedHosts); err != nil {
		return c, fmt.Errorf("ALLOWED_HOSTS: %w", err)
	}
	if c.HTTPMaxConns, err = intIn(*maxConns, 1, 1_000_000); err != nil {
		return c, fmt.Errorf("HTTP_MAX_CONNS: %w", err)
	}
	if c.HTTPMaxPerClient, err = intIn(*maxPerClient, 1, 1_000_000); err != nil {
		return c, fmt.Errorf("HTTP_MAX_PER_CLIENT: %w", err)
	}
	mb, err := intIn(*outcomeCache, 1, 1<<20)
	if err != nil {
		return c, fmt.Errorf("OUTCOME_CACHE_MB: %w (MiB)", err)
	}
	c.OutcomeCacheBytes = int64(mb) << 20
	if c.Lanes, err = intIn(*lanes, 1, 64); err != nil {
		return c, fmt.Errorf("STAGE_LANES: %w", err)
	}
	if c.Overlap, err = strconv.ParseBool(*overlap); err != nil {
		return c, fmt.Errorf("STAGE_OVERLAP: %q must be true or false", *overlap)
	}
	if c.ProjectionLinger, err = time.ParseDuration(*projLinger); err != nil || c.ProjectionLinger < 0 || c.ProjectionLinger > time.Second {
		return c, fmt.Errorf("PROJECTION_LINGER: %q must be a duration from 0 to 1s, such as 25ms", *projLinger)
	}
	// Below a second, a restore gives up before its first fetch answers
	// (and starts again, forever) and /readyz calls any batch stalled.
	if c.StallTimeout, err = time.ParseDuration(*stallTimeout); err != nil || c.StallTimeout < time.Second {
		return c, fmt.Errorf("STALL_TIMEOUT: %q must be a duration of at least 1s, such as 30s", *stallTimeout)
	}
	if c.StreamMaxSubscribers, err = intIn(*streamMax, 1, 1_000_000); err != nil {
		return c, fmt.Errorf("STREAM_MAX_SUBSCRIBERS: %w", err)
	}
	if c.StreamMaxPerClient, err = intIn(*streamPerClient, 1, 1_000_000); err != nil {
		return c, fmt.Errorf("STREAM_MAX_PER_CLIENT: %w", err)
	}
	if c.Kafka, err = kafkaSec(); err != nil {
		return c, err
	}
	if c.Kafka.Enabled() && len(c.Brokers) == 0 {
		return c, fmt.Errorf("the KAFKA_TLS_* and KAFKA_SASL_* settings are for KAFKA_BROKERS, which is not set: the embedded broker uses its own credentials, kept in DATA_DIR")
	}
	if err := httpSec(&c); err != nil {
		return c, err
	}
	return c, nil
}

// intIn parses s as an integer from lo to hi.
func intIn(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q must be an integer from %d to %d", s, lo, hi)
	}
	return n, nil
}

// parseHosts parses a comma-separated list of host names and IP addresses
// (no scheme, port or path: the Host header is compared without its port),
// or "*". An empty list is nil.
func parseHosts(s string) ([]string, error) {
	var hosts []string
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
			continue
		case h == "*":
		case validHostName(h):
		default:
			if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err != nil {
				return nil, fmt.Errorf("%q is not a host name or IP address (no scheme, port or path)", h)
			}
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// validHostName reports whether h is a DNS name: labels of letters, digits,
// '-' and '_', joined by dots (a final dot allowed), at most 253 bytes.
func validHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

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

// Logger returns the logger the configuration asks for, writing to stderr.
func (c Config) Logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// parseKafkaLogLevel reads KAFKA_LOG_LEVEL: none, error, warn, info or
// debug.
func parseKafkaLogLevel(s string) (kgo.LogLevel, error) {
	switch strings.ToLower(s) {
	case "none", "off":
		return kgo.LogLevelNone, nil
	case "error":
		return kgo.LogLevelError, nil
	case "warn":
		return kgo.LogLevelWarn, nil
	case "info":
		return kgo.LogLevelInfo, nil
	case "debug":
		return kgo.LogLevelDebug, nil
	}
	return kgo.LogLevelNone, fmt.Errorf("%q must be none, error, warn, info or debug", s)
}
