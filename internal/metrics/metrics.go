// Package metrics exposes the service's Prometheus metrics: it implements
// the runtime's eskafka.Observer and the HTTP API's request observer on a
// registry of its own (no global state), served at /metrics.
package metrics

import (
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the service's collectors.
type Metrics struct {
	reg          *prometheus.Registry
	commands     *prometheus.CounterVec
	transactions *prometheus.CounterVec
	txnDuration  *prometheus.HistogramVec
	batchSize    *prometheus.HistogramVec
	lag          *prometheus.GaugeVec
	restored     *prometheus.CounterVec
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	forwarded    *prometheus.CounterVec
	poisoned     *prometheus.CounterVec
	fenced       *prometheus.CounterVec
}

// New returns metrics registered on a new registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catalog_commands_total", Help: "Commands processed, by aggregate, type, status (accepted, rejected) and rejection code.",
		}, []string{"aggregate", "type", "status", "code"}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catalog_transactions_total", Help: "Kafka transactions of each stage, by result (commit, abort).",
		}, []string{"stage", "result"}),
		txnDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "catalog_transaction_duration_seconds", Help: "Time from a batch's start to its commit or abort.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"stage", "result"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "catalog_batch_records", Help: "Input records per transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}, []string{"stage"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "catalog_consumer_lag_records", Help: "Records waiting in each input partition, as of the last fetch.",
		}, []string{"stage", "topic", "partition"}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catalog_restored_records_total", Help: "Changelog records restored into local stores.",
		}, []string{"stage"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catalog_http_requests_total", Help: "HTTP requests by route pattern and status.",
		}, []string{"route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "catalog_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"route"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catalog_forwarded_requests_total", Help: "Reads forwarded to the instance owning the key.",
		}, []string{"route"}),
		poisoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catalog_poisoned_records_total", Help: "Input records a stage gave up on (dead-lettered) and commands refused for a corrupt stored state, by stage and kind.",
		}, []string{"stage", "kind"}),
		fenced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catalog_fenced_transactions_total", Help: "Transactions left open by instances that left a stage's group, ended by this instance when it took their partitions.",
		}, []string{"stage"}),
	}
	m.reg.MustRegister(m.commands, m.transactions, m.txnDuration, m.batchSize, m.lag, m.restored,
		m.httpRequests, m.httpDuration, m.forwarded, m.poisoned, m.fenced,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Transaction implements eskafka.Observer.
func (m *Metrics) Transaction(stage string, records int, committed bool, took time.Duration) {
	result := "abort"
	if committed {
		result = "commit"
		m.batchSize.WithLabelValues(stage).Observe(float64(records))
	}
	m.transactions.WithLabelValues(stage, result).Inc()
	m.txnDuration.WithLabelValues(stage, result).Observe(took.Seconds())
}

// Lag implements eskafka.Observer.
func (m *Metrics) Lag(stage, topic string, partition int32, lag int64) {
	m.lag.WithLabelValues(stage, topic, strconv.Itoa(int(partition))).Set(float64(lag))
}

// Restored implements eskafka.Observer.
func (m *Metrics) Restored(stage string, records int64) {
	m.restored.WithLabelValues(stage).Add(float64(records))
}

// Command implements eskafka.Observer.
func (m *Metrics) Command(aggregate, typ, status, code string) {
	m.commands.WithLabelValues(label(aggregate), label(typ), label(status), label(code)).Inc()
}

// Poisoned implements eskafka.Observer.
func (m *Metrics) Poisoned(stage, kind string) {
	m.poisoned.WithLabelValues(label(stage), label(kind)).Inc()
}

// Fenced implements eskafka.Observer.
func (m *Metrics) Fenced(stage string) {
	m.fenced.WithLabelValues(label(stage)).Inc()
}

// WatchStage exports whether a stage is healthy (1) or not (0), asked at
// each scrape.
func (m *Metrics) WatchStage(stage string, healthy func() bool) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "catalog_stage_healthy", Help: "1 while a stage makes progress, 0 while it keeps failing or is stalled (see /readyz).",
		ConstLabels: prometheus.Labels{"stage": stage},
	}, func() float64 {
		if healthy() {
			return 1
		}
		return 0
	}))
}

// label guards a label value the runtime passes on: the callers use closed
// sets, but a value that is not short valid UTF-8 would make the Prometheus
// client panic, so it becomes "invalid" instead.
func label(v string) string {
	if len(v) > 128 || !utf8.ValidString(v) {
		return "invalid"
	}
	return v
}

// Request records one HTTP request (httpapi's request observer).
func (m *Metrics) Request(route string, status int, took time.Duration, forwarded bool) {
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(took.Seconds())
	if forwarded {
		m.forwarded.WithLabelValues(route).Inc()
	}
}
