package config

import (
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDefaults(t *testing.T) {
	c, err := Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Brokers != nil || c.EmbeddedAddr != "127.0.0.1:9092" || c.HTTPAddr != "localhost:9081" ||
		c.AdvertisedURL != "http://localhost:9081" || c.DataDir != "./data" || c.Service != "catalog" ||
		c.Partitions != 6 || c.ReplicationFactor != 1 || c.LogFormat != "text" || c.KafkaLogLevel != kgo.LogLevelNone {
		t.Fatalf("defaults = %+v", c)
	}
	if c.AllowedHosts != nil || c.HTTPMaxConns != 1000 || c.HTTPMaxPerClient != 256 || c.OutcomeCacheBytes != 64<<20 || c.StallTimeout != 30*time.Second ||
		c.StreamMaxSubscribers != 100 || c.StreamMaxPerClient != 4 || c.Lanes != 1 || !c.Overlap || c.ProjectionLinger != 25*time.Millisecond {
		t.Fatalf("defaults of the limits = %+v", c)
	}
}

func TestLimits(t *testing.T) {
	env := map[string]string{
		"ALLOWED_HOSTS": " catalog.example.com, 10.0.0.7 ,[::1],localhost.,*", "HTTP_MAX_CONNS": "20", "HTTP_MAX_PER_CLIENT": "5", "OUTCOME_CACHE_MB": "3",
		"STALL_TIMEOUT": "2m", "STREAM_MAX_SUBSCRIBERS": "7", "STREAM_MAX_PER_CLIENT": "1", "STAGE_LANES": "3",
		"PROJECTION_LINGER": "0",
	}
	c, err := Load([]string{"-http-max-conns", "30"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"catalog.example.com", "10.0.0.7", "[::1]", "localhost.", "*"}; !slices.Equal(c.AllowedHosts, want) {
		t.Fatalf("AllowedHosts = %q, want %q", c.AllowedHosts, want)
	}
	if c.HTTPMaxConns != 30 || c.HTTPMaxPerClient != 5 || c.OutcomeCacheBytes != 3<<20 || c.StallTimeout != 2*time.Minute ||
		c.StreamMaxSubscribers != 7 || c.StreamMaxPerClient != 1 || c.Lanes != 3 || c.ProjectionLinger != 0 {
		t.Fatalf("config = %+v", c)
	}
	// Commas alone are no hosts: the default applies.
	if c, err := Load(nil, func(k string) string { return map[string]string{"ALLOWED_HOSTS": " , ,"}[k] }); err != nil || c.AllowedHosts != nil {
		t.Fatalf("ALLOWED_HOSTS of commas: %q, %v", c.AllowedHosts, err)
	}
}

func TestEnvAndFlags(t *testing.T) {
	env := map[string]string{"KAFKA_BROKERS": "a:1, b:2", "PARTITIONS": "3", "HTTP_ADDR": "127.0.0.1:9000", "LOG_FORMAT": "json", "KAFKA_LOG_LEVEL": "Debug"}
	c, err := Load([]string{"-partitions", "12"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) != 2 || c.Brokers[1] != "b:2" || c.Partitions != 12 || c.AdvertisedURL != "http://127.0.0.1:9000" || c.LogFormat != "json" ||
		c.KafkaLogLevel != kgo.LogLevelDebug {
		t.Fatalf("config = %+v", c)
	}
}

func TestInvalid(t *testing.T) {
	for _, c := range []struct{ k, v string }{
		{"KAFKA_BROKERS", "nohost"}, {"PARTITIONS", "0"}, {"REPLICATION_FACTOR", "x"}, {"HTTP_ADDR", "9081"},
		{"ADVERTISED_URL", "ftp://x"}, {"SERVICE_NAME", "a.b"}, {"LOG_LEVEL", "loud"}, {"LOG_FORMAT", "xml"}, {"KAFKA_LOG_LEVEL", "trace"}, {"WRITE_TIMEOUT", "-1s"},
		{"ALLOWED_HOSTS", "http://catalog.example.com"}, {"ALLOWED_HOSTS", "localhost:9081"}, {"ALLOWED_HOSTS", "a/b"},
		{"ALLOWED_HOSTS", "ok.example, bad host"}, {"ALLOWED_HOSTS", "a..b"}, {"ALLOWED_HOSTS", strings.Repeat("a", 64) + ".example"},
		{"HTTP_MAX_CONNS", "0"}, {"HTTP_MAX_CONNS", "-5"}, {"HTTP_MAX_CONNS", "many"}, {"HTTP_MAX_CONNS", "1e3"},
		{"OUTCOME_CACHE_MB", "0"}, {"OUTCOME_CACHE_MB", "64MiB"}, {"OUTCOME_CACHE_MB", "99999999999"},
		{"STALL_TIMEOUT", "0s"}, {"STALL_TIMEOUT", "-1s"}, {"STALL_TIMEOUT", "30"},
		{"STREAM_MAX_SUBSCRIBERS", "0"}, {"STREAM_MAX_SUBSCRIBERS", "x"},
		{"STREAM_MAX_PER_CLIENT", "0"}, {"STREAM_MAX_PER_CLIENT", "2.5"},
		{"STAGE_LANES", "0"}, {"STAGE_LANES", "65"}, {"STAGE_LANES", "two"}, {"STAGE_OVERLAP", "maybe"},
		{"PROJECTION_LINGER", "-1ms"}, {"PROJECTION_LINGER", "2s"}, {"PROJECTION_LINGER", "25"},
	} {
		_, err := Load(nil, func(key string) string {
			if key == c.k {
				return c.v
			}
			return ""
		})
		if err == nil || !strings.HasPrefix(err.Error(), c.k+":") || !strings.Contains(err.Error(), strings.TrimSpace(c.v)[:1]) {
			t.Errorf("%s=%q: error %v, want one naming %s and the value", c.k, c.v, err, c.k)
		}
	}
}

// A stall timeout shorter than a fetch's round trip makes every restore
// give up before its first records arrive ("restore stalled: no record
// for 1ms", then the stage's session starts again, forever) and /readyz
// report any batch in progress as stalled: refused at start.
func TestStallTimeoutTooShort(t *testing.T) {
	for _, v := range []string{"1ns", "1ms", "999ms"} {
		_, err := Load(nil, func(key string) string {
			if key == "STALL_TIMEOUT" {
				return v
			}
			return ""
		})
		if err == nil || !strings.HasPrefix(err.Error(), "STALL_TIMEOUT:") || !strings.Contains(err.Error(), v) {
			t.Errorf("STALL_TIMEOUT=%s: error %v, want one naming STALL_TIMEOUT and the value", v, err)
		}
	}
	if _, err := Load(nil, func(key string) string {
		if key == "STALL_TIMEOUT" {
			return "1s"
		}
		return ""
	}); err != nil {
		t.Errorf("STALL_TIMEOUT=1s: %v", err)
	}
}

// CLUSTER_SECRET_FILE naming a FIFO is refused at once: it used to block
// the start for good.
func TestClusterSecretFileThatIsAFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "secret")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Load(nil, func(key string) string {
			if key == "CLUSTER_SECRET_FILE" {
				return fifo
			}
			return ""
		})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.HasPrefix(err.Error(), "CLUSTER_SECRET_FILE:") {
			t.Errorf("error %v, want one naming CLUSTER_SECRET_FILE", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("CLUSTER_SECRET_FILE naming a FIFO: no answer after 3s")
	}
}
