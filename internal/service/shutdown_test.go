package service_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/internal/config"
)

// TestShutdownAnswersWritesInFlight stops an instance while a write's
// command is being committed: the write must still get its answer (201),
// for the HTTP server shuts down, letting requests in flight finish, before
// the stages and outcome followers stop.
func TestShutdownAnswersWritesInFlight(t *testing.T) {
	gate := newCommitGate()
	h := newHarness(t, func(h *harness) { h.BeforeCommit = gate.hold })
	inst := h.start()
	gate.armed.Store(true)
	answered := postAuthorAsync(inst)
	gate.awaitHeld(t)
	stopped := make(chan struct{})
	go func() {
		inst.stop()
		close(stopped)
	}()
	// Let the shutdown begin while the command is still uncommitted.
	time.Sleep(500 * time.Millisecond)
	close(gate.release)
	a := <-answered
	if a.err != nil || a.status != http.StatusCreated {
		t.Errorf("write in flight at shutdown: status %d, %v: %s; want 201", a.status, a.err, a.body)
	}
	<-stopped
}

// TestShutdownAnswersLongPolls stops an instance while a client long-polls
// the outcome of a command that has none: the poll must be answered before
// Run returns (the process exits then, cutting whatever is still open),
// not left waiting out its ?wait= while the graceful shutdown waits for it.
func TestShutdownAnswersLongPolls(t *testing.T) {
	h := newHarness(t)
	inst := h.start()
	// A kept-alive connection, so that the poll below is on a connection
	// the server already reads from.
	inst.get("/healthz").expect(t, http.StatusOK, nil)

	answered := make(chan answer, 1)
	go func() {
		resp, err := inst.client.Get(inst.URL + "/authors/commands/no-such-command?wait=60s")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		answered <- answer{status: resp.StatusCode, err: err}
	}()
	// Let the poll reach its handler (a poll still on the wire would be
	// refused, which the check below reports too).
	time.Sleep(500 * time.Millisecond)

	stopped := make(chan error, 1)
	go func() {
		inst.cancel()
		stopped <- <-inst.done
	}()
	inst.exited = true
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("service Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the service did not stop within 60s")
	}
	// Run has returned: in the process, main exits now. The poll must
	// have been answered already (a generous guard for the answer to
	// cross the loopback; the poll itself would answer only at 60s).
	select {
	case a := <-answered:
		if a.err != nil || a.status != http.StatusServiceUnavailable {
			t.Errorf("long poll at shutdown: status %d, %v; want 503", a.status, a.err)
		}
	case <-time.After(5 * time.Second):
		t.Error("a long poll in flight at shutdown was not answered before Run returned")
	}
}

// TestShutdownWaitsForWritesUpToWriteTimeout: with WRITE_TIMEOUT above
// the 15 s the graceful shutdown used to give requests in flight, a write
// whose commit takes longer than those 15 s must still be answered (its
// 201) before Run returns, not cut when the process exits.
func TestShutdownWaitsForWritesUpToWriteTimeout(t *testing.T) {
	gate := newCommitGate()
	h := newHarness(t, func(h *harness) {
		h.Configure = func(c *config.Config) { c.WriteTimeout = 40 * time.Second }
		h.BeforeCommit = gate.hold
	})
	inst := h.start()
	inst.client.Timeout = 2 * time.Minute
	gate.armed.Store(true)
	answered := postAuthorAsync(inst)
	gate.awaitHeld(t)
	stopped := make(chan error, 1)
	go func() {
		inst.cancel()
		stopped <- <-inst.done
	}()
	inst.exited = true
	// The commit takes longer than the 15 s a shutdown gave requests in
	// flight, well within WRITE_TIMEOUT.
	time.Sleep(17 * time.Second)
	close(gate.release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("service Run: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the service did not stop")
	}
	select {
	case a := <-answered:
		if a.err != nil || a.status != http.StatusCreated {
			t.Errorf("write in flight at shutdown: status %d, %v: %s; want 201", a.status, a.err, a.body)
		}
	case <-time.After(5 * time.Second):
		t.Error("a write in flight at shutdown was not answered before Run returned")
	}
}

// commitGate holds, once armed, the commits of an instance's stages
// (harness.BeforeCommit) until release is closed.
type commitGate struct {
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func newCommitGate() *commitGate {
	return &commitGate{held: make(chan struct{}, 1), release: make(chan struct{})}
}

// hold is the BeforeCommit hook.
func (g *commitGate) hold(context.Context) error {
	if g.armed.Load() {
		select {
		case g.held <- struct{}{}:
		default:
		}
		<-g.release
	}
	return nil
}

// awaitHeld waits until a commit is held.
func (g *commitGate) awaitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-g.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the command never reached its commit")
	}
}

// postAuthorAsync creates an author on inst in the background.
func postAuthorAsync(inst *instance) <-chan answer {
	answered := make(chan answer, 1)
	go func() {
		b, _ := json.Marshal(authorBody("jane-austen", "Jane", "Austen"))
		answered <- inst.send(http.MethodPost, "/authors", string(b), nil)
	}()
	return answered
}
