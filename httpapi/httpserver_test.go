package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
)

func TestNewServerDefaults(t *testing.T) {
	h := http.NotFoundHandler()
	srv := NewServer(h, ServerConfig{})
	if srv.Handler == nil || srv.ReadHeaderTimeout != 5*time.Second || srv.ReadTimeout != 30*time.Second ||
		srv.WriteTimeout != 60*time.Second || srv.IdleTimeout != 60*time.Second || srv.MaxHeaderBytes != 64<<10 || srv.ErrorLog != nil {
		t.Fatalf("defaults: %+v", srv)
	}
	srv = NewServer(h, ServerConfig{ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4, MaxHeaderBytes: 5,
		Logger: slog.New(slog.DiscardHandler)})
	if srv.ReadHeaderTimeout != 1 || srv.ReadTimeout != 2 || srv.WriteTimeout != 3 || srv.IdleTimeout != 4 || srv.MaxHeaderBytes != 5 || srv.ErrorLog == nil {
		t.Fatalf("configured: %+v", srv)
	}
}

// serve serves h with NewServer(cfg) on a loopback port and returns its
// base URL.
func serve(t *testing.T, h http.Handler, cfg ServerConfig) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, cfg)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestMaxHeaderBytes(t *testing.T) {
	base := serve(t, fuzzAPI(), ServerConfig{})
	for _, c := range []struct {
		size   int
		status int
	}{
		{32 << 10, http.StatusOK},
		// net/http allows 4 KiB over MaxHeaderBytes; without a limit
		// it would take a megabyte.
		{100 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("p", c.size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%d bytes of header: %v", c.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%d bytes of header: status %d, want %d", c.size, resp.StatusCode, c.status)
		}
	}
}

// blockingWriter accepts every command and never has an outcome: Await
// waits until its context ends.
type blockingWriter[S, C, E any] struct{}

func (blockingWriter[S, C, E]) Send(_ context.Context, _ C, opt eskafka.SendOptions) (eskafka.Sent, error) {
	return eskafka.Sent{MsgID: opt.MsgID}, nil
}

func (blockingWriter[S, C, E]) Await(ctx context.Context, _ eskafka.Sent) (*eskafka.Result[S, E], error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (blockingWriter[S, C, E]) Lookup(string) (*eskafka.Result[S, E], bool, error) {
	return nil, false, nil
}

// TestWaitsOutliveWriteTimeout: a handler that waits on purpose (a write
// waiting for its outcome, a long poll) still delivers its answer when the
// wait is longer than the server's WriteTimeout, which would otherwise cut
// the connection before the answer.
func TestWaitsOutliveWriteTimeout(t *testing.T) {
	const wait = 300 * time.Millisecond
	cfg := testConfig()
	peopleIn(cfg).Writer = blockingWriter[person, personCommand, personEvent]{}
	cfg.WriteTimeout = wait
	// The write deadline passes long before either handler answers.
	base := serve(t, New(cfg), ServerConfig{WriteTimeout: wait / 10})
	for _, c := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"write", http.MethodPost, "/people", `{"id":"ja","name":"J"}`, http.StatusGatewayTimeout},
		{"long poll", http.MethodGet, "/people/commands/m1?wait=" + wait.String(), "", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v (the answer did not arrive)", c.name, err)
		}
		var p Problem
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil || resp.StatusCode != c.status || p.Status != c.status {
			t.Fatalf("%s: status %d, problem %+v, %v; want %d", c.name, resp.StatusCode, p, err, c.status)
		}
	}
}

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 2)
	slots := ln.(*limitListener).slots
	accepted := make(chan net.Conn)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// notAccepted checks that no connection is accepted for a while. It
	// can only miss a bug, never fail a correct listener.
	notAccepted := func(what string) {
		t.Helper()
		select {
		case c := <-accepted:
			t.Fatalf("%s: connection from %s accepted beyond the limit", what, c.RemoteAddr())
		case <-time.After(100 * time.Millisecond):
		}
	}
	dial()
	dial()
	dial()
	s1, s2 := <-accepted, <-accepted
	notAccepted("third of two")
	if len(slots) != 2 {
		t.Fatalf("%d slots taken, want 2", len(slots))
	}

	// Closing twice frees one slot, not two.
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	_ = s1.Close()
	s3 := <-accepted
	dial()
	notAccepted("fourth after one close")
	if len(slots) != 2 {
		t.Fatalf("after a double close and an accept: %d slots taken, want 2", len(slots))
	}

	s2.Close()
	s4 := <-accepted
	s4.Close()
	s3.Close()

	// Close ends an Accept waiting for a slot.
	dial()
	dial()
	<-accepted
	<-accepted
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-acceptErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

// TestLimitListenerServes caps a real HTTP server at one connection: a
// second client is served once the first connection closes.
func TestLimitListenerServes(t *testing.T) {
	url := limitedServer(t, 1) + "/healthz"
	for i := range 3 {
		// A new transport each time, and no keep-alive, so that each
		// request needs the connection the previous one released.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
}

func TestLimitListenerNoLimit(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	if ln := LimitListener(inner, 0); ln != inner {
		t.Fatalf("LimitListener(ln, 0) = %T, want ln itself", ln)
	}
}

// limitedServer serves the fuzz API on a loopback listener limited to max
// connections, with NewServer's settings, and returns its base URL.
func limitedServer(t *testing.T, max int) string {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(fuzzAPI(), ServerConfig{})
	go func() { _ = srv.Serve(LimitListener(inner, max)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + inner.Addr().String()
}
