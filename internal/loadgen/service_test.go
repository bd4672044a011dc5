package loadgen_test

import (
	"bytes"
	"context"
	"maps"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/internal/config"
	"github.com/bookscatalog/catalog/internal/loadgen"
	"github.com/bookscatalog/catalog/internal/service"
	"github.com/bookscatalog/catalog/kafkatest"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// startService runs a catalog service in-process (on kfake, or the Kafka of
// KAFKA_BROKERS) and returns its base URL, brokers and service name once it
// is ready.
func startService(t *testing.T) (url string, brokers []string, name string) {
	t.Helper()
	cfg, err := config.Load(nil, func(k string) string {
		if k == "LOG_LEVEL" {
			return "error"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Brokers = kafkatest.Brokers(t)
	cfg.DataDir = t.TempDir()
	cfg.Service = kafkatest.Service(t)
	cfg.Partitions = 3
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url = "http://" + ln.Addr().String()
	cfg.HTTPAddr, cfg.AdvertisedURL = ln.Addr().String(), url
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.New(ctx, cfg, service.Options{Listener: ln})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, cfg.Brokers, cfg.Service
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("service not ready after 60s (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAgainstRealService(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole service")
	}
	url, brokers, name := startService(t)
	check := func(t *testing.T, rep loadgen.Report, want int64) {
		t.Helper()
		if rep.Requests != want || rep.Successes != want || rep.Errors != 0 {
			t.Fatalf("requests %d successes %d errors %d %v, want %d without error", rep.Requests, rep.Successes, rep.Errors, rep.ErrorKinds, want)
		}
		if rep.Latency.P50 <= 0 || rep.Latency.Max < rep.Latency.P99 {
			t.Fatalf("latency %+v", rep.Latency)
		}
	}
	var logs bytes.Buffer
	t.Run("http", func(t *testing.T) {
		rep, err := loadgen.Run(t.Context(), loadgen.Options{
			Mode: loadgen.ModeHTTP, URLs: []string{url}, Clients: 8, Count: 200, Mix: loadgen.Mix{Create: 1, Update: 1},
			Timeout: 30 * time.Second, ProgressEvery: -1,
		}, &logs)
		if err != nil {
			t.Fatal(err)
		}
		check(t, rep, 200)
		if rep.Ops["update"].Requests == 0 {
			t.Fatalf("no updates: %v", rep.Ops)
		}
	})
	t.Run("kafka", func(t *testing.T) {
		schemas := func() map[uint64]string {
			t.Helper()
			reg, err := schemaregistry.New(t.Context(), brokers, name+".schemas")
			if err != nil {
				t.Fatal(err)
			}
			defer reg.Close()
			all, err := reg.All(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return all
		}
		before := schemas()
		rep, err := loadgen.Run(t.Context(), loadgen.Options{
			Mode: loadgen.ModeKafka, Brokers: brokers, Service: name, Clients: 8, Count: 200, Mix: loadgen.Mix{Create: 1, Update: 1},
			Timeout: 30 * time.Second, ProgressEvery: -1,
		}, &logs)
		if err != nil {
			t.Fatal(err)
		}
		check(t, rep, 200)
		// loadgen's codecs are the service's: it registered no schema
		// of its own.
		if after := schemas(); !maps.Equal(before, after) {
			t.Fatalf("loadgen changed the registry: %d schemas before, %d after", len(before), len(after))
		}
		// What went by Kafka is visible over HTTP.
		lrep, err := loadgen.Run(t.Context(), loadgen.Options{
			Mode: loadgen.ModeHTTPRead, URLs: []string{url}, Clients: 8, Count: 200, Seed: -1, Timeout: 30 * time.Second, ProgressEvery: -1,
		}, &logs)
		if err != nil {
			t.Fatal(err)
		}
		check(t, lrep, 200)
		// http created about 100 authors, kafka about 100 more.
		if lrep.Seeded < 200 {
			t.Fatalf("listed %d authors, want those created over HTTP and Kafka", lrep.Seeded)
		}
	})
	t.Run("http-read", func(t *testing.T) {
		rep, err := loadgen.Run(t.Context(), loadgen.Options{
			Mode: loadgen.ModeHTTPRead, URLs: []string{url}, Clients: 8, Count: 200, Seed: 20, Timeout: 30 * time.Second, ProgressEvery: -1,
		}, &logs)
		if err != nil {
			t.Fatal(err)
		}
		check(t, rep, 200)
	})
	t.Run("kafka wrong service", func(t *testing.T) {
		_, err := loadgen.Run(t.Context(), loadgen.Options{Mode: loadgen.ModeKafka, Brokers: brokers, Service: name + "-nope", Count: 1}, nil)
		if err == nil {
			t.Fatal("ran against topics that do not exist")
		}
	})
	if testing.Verbose() {
		t.Log("\n" + logs.String())
	}
}
