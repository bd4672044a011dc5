package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestShutdownAnswersWritesInFlight stops an instance while a write's
// command is being committed: the write must still get its answer (201),
// for the HTTP server shuts down, letting requests in flight finish, before
// the stages and outcome followers stop.
func TestShutdownAnswersWritesInFlight(t *testing.T) {
	var armed atomic.Bool
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	h := newHarness(t, func(h *harness) {
		h.BeforeCommit = func(context.Context) error {
			if armed.Load() {
				select {
				case entered <- struct{}{}:
				default:
				}
				<-release
			}
			return nil
		}
	})
	inst := h.start()
	armed.Store(true)

	type answer struct {
		status int
		body   []byte
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		b, _ := json.Marshal(authorBody("jane-austen", "Jane", "Austen"))
		resp, err := inst.client.Post(inst.URL+"/authors", "application/json", bytes.NewReader(b))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		answered <- answer{status: resp.StatusCode, body: body, err: err}
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the command never reached its commit")
	}
	stopped := make(chan struct{})
	go func() {
		inst.stop()
		close(stopped)
	}()
	// Let the shutdown begin while the command is still uncommitted.
	time.Sleep(500 * time.Millisecond)
	close(release)
	a := <-answered
	if a.err != nil || a.status != http.StatusCreated {
		t.Errorf("write in flight at shutdown: status %d, %v: %s; want 201", a.status, a.err, a.body)
	}
	<-stopped
}
