package httpapi

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// POST /{name}/commands waits for Kafka's confirmation up to
// WRITE_TIMEOUT, like every write, and moves the response's write deadline
// as they do. It used not to: with a WRITE_TIMEOUT longer than the
// server's WriteTimeout (60 s), a command Kafka did not confirm got no
// answer at all: its 504 was written after the connection's deadline.
func TestPostCommandAnswersItsTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.WriteTimeout = 1500 * time.Millisecond
	people := peopleIn(cfg)
	people.Writer = slowWriter[person, personCommand, personEvent]{Writer: people.Writer, d: time.Hour}
	// The server's WriteTimeout, scaled down like WRITE_TIMEOUT: 60 s
	// against, say, WRITE_TIMEOUT=90s.
	srv := NewServer(New(cfg), ServerConfig{WriteTimeout: time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String()
	for _, c := range []struct{ path, body string }{
		{"/people", `{"id":"ada","name":"Ada"}`},
		{"/people/commands", `{"type":"addPerson","id":"bob","name":"Bob"}`},
	} {
		req, _ := http.NewRequest("POST", url+c.path, strings.NewReader(c.body))
		req.Host = "localhost"
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("POST %s with Kafka not confirming: no answer (%v); want 504", c.path, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("POST %s: %d, want 504", c.path, resp.StatusCode)
		}
	}
}
