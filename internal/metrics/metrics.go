// Package metrics exposes the service's Prometheus metrics: it implements
// the runtime's eskafka.Observer and the HTTP API's request observer on a
// registry of its own (no global state), served at /metrics.
package metrics

import (
	"net/http"
	"strconv"
	"time"

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
	}
	m.reg.MustRegister(m.commands, m.transactions, m.txnDuration, m.batchSize, m.lag, m.restored,
		m.httpRequests, m.httpDuration, m.forwarded,
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
	m.commands.WithLabelValues(aggregate, typ, status, code).Inc()
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
