package config

import (
	"strings"
	"testing"
)

func TestDefaults(t *testing.T) {
	c, err := Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Brokers != nil || c.EmbeddedAddr != "127.0.0.1:9092" || c.HTTPAddr != "localhost:9081" ||
		c.AdvertisedURL != "http://localhost:9081" || c.DataDir != "./data" || c.Service != "catalog" ||
		c.Partitions != 6 || c.ReplicationFactor != 1 || c.LogFormat != "text" {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestEnvAndFlags(t *testing.T) {
	env := map[string]string{"KAFKA_BROKERS": "a:1, b:2", "PARTITIONS": "3", "HTTP_ADDR": "127.0.0.1:9000", "LOG_FORMAT": "json"}
	c, err := Load([]string{"-partitions", "12"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) != 2 || c.Brokers[1] != "b:2" || c.Partitions != 12 || c.AdvertisedURL != "http://127.0.0.1:9000" || c.LogFormat != "json" {
		t.Fatalf("config = %+v", c)
	}
}

func TestInvalid(t *testing.T) {
	for k, v := range map[string]string{
		"KAFKA_BROKERS": "nohost", "PARTITIONS": "0", "REPLICATION_FACTOR": "x", "HTTP_ADDR": "9081",
		"ADVERTISED_URL": "ftp://x", "SERVICE_NAME": "a.b", "LOG_LEVEL": "loud", "LOG_FORMAT": "xml", "WRITE_TIMEOUT": "-1s",
	} {
		_, err := Load(nil, func(key string) string {
			if key == k {
				return v
			}
			return ""
		})
		if err == nil || !strings.HasPrefix(err.Error(), k+":") {
			t.Errorf("%s=%q: error %v, want one naming %s", k, v, err, k)
		}
	}
}
