package service_test

// Write semantics under concurrency and retries: one Idempotency-Key sent
// at once from many clients to several instances, If-Match races, and
// retries whose precheck would now refuse them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/internal/config"
	"github.com/bookscatalog/catalog/internal/service"
)

// answer is a response read by a goroutine other than the test's.
type answer struct {
	status int
	etag   string
	body   string
	err    error
}

// send is instance.do for goroutines: it reports errors instead of
// failing the test.
func (i *instance) send(method, path, body string, headers http.Header) answer {
	req, err := http.NewRequest(method, i.URL+path, strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range headers {
		req.Header[k] = vs
	}
	resp, err := i.client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, etag: resp.Header.Get("ETag"), body: string(bytes.TrimSpace(b)), err: err}
}

// together runs n calls of f at once and returns their answers in call
// order.
func together(n int, f func(i int) answer) []answer {
	out := make([]answer, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			out[i] = f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return out
}

// problemCode returns the code member of a problem body.
func problemCode(body string) string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal([]byte(body), &p)
	return p.Code
}

// twoInstances starts two instances of one service and waits until both
// own partitions of every stage.
func twoInstances(t *testing.T) (*harness, *instance, *instance) {
	t.Helper()
	h := newHarness(t)
	a := h.startIn(filepath.Join(h.DataDir, "a"))
	b := h.startIn(filepath.Join(h.DataDir, "b"))
	poll(t, "a and b to share every stage", func() error {
		var m service.Metadata
		a.get("/metadata").expect(t, http.StatusOK, &m)
		if len(m.Instances) != 2 {
			return fmt.Errorf("instances %v", m.Instances)
		}
		return everyPartitionOwned(m)
	})
	return h, a, b
}

// One Idempotency-Key sent at once by many clients through two instances,
// half with one body and half with another: exactly one of the two
// commands is applied, once; every sender of the applied body gets the
// same 201 (body and ETag), and every sender of the other body 422
// idempotency_key_reused, whichever instance it asked.
func TestOneIdempotencyKeyAtOnceOnTwoInstances(t *testing.T) {
	t.Parallel()
	h, a, b := twoInstances(t)
	const n = 24
	bodies := []string{
		`{"title":"Persuasion"}`,
		`{"title":"Emma"}`,
	}
	key := hdr("Idempotency-Key", "one-key-many-clients")
	got := together(n, func(i int) answer {
		inst := []*instance{a, b}[i%2]
		return inst.send(http.MethodPost, "/books", bodies[(i/2)%2], key)
	})
	winner := -1
	for i, g := range got {
		if g.err != nil {
			t.Fatalf("request %d: %v", i, g.err)
		}
		if g.status == http.StatusCreated {
			w := (i / 2) % 2
			if winner >= 0 && w != winner {
				t.Fatalf("both bodies were answered 201 (request %d: %s)", i, g.body)
			}
			winner = w
		}
	}
	if winner < 0 {
		t.Fatalf("no request was answered 201: %+v", got)
	}
	var first answer
	for i, g := range got {
		if (i/2)%2 != winner {
			if g.status != http.StatusUnprocessableEntity || problemCode(g.body) != "idempotency_key_reused" {
				t.Fatalf("request %d with the other body: %d %s, want 422 idempotency_key_reused", i, g.status, g.body)
			}
			continue
		}
		if first.status == 0 {
			first = g
		}
		if g.status != http.StatusCreated || g.body != first.body || g.etag != first.etag {
			t.Fatalf("request %d with the applied body: %d %s %s, want %d %s %s", i, g.status, g.etag, g.body, first.status, first.etag, first.body)
		}
	}
	var created bookView
	if err := json.Unmarshal([]byte(first.body), &created); err != nil {
		t.Fatal(err)
	}
	// Every sender's command reached the processor before its answer, so
	// the events are all there now.
	if evs := eventNames(h.bookEvents(created.ID)); !slices.Equal(evs, []string{"BookCreated"}) {
		t.Fatalf("events of %s: %v, want one BookCreated", created.ID, evs)
	}
}

// N updates at once with the same If-Match, through two instances: exactly
// one is applied (200, version 2), every other is 412, and the author has
// exactly one AuthorUpdated.
func TestIfMatchRaceHasOneWinner(t *testing.T) {
	t.Parallel()
	h, a, b := twoInstances(t)
	a.createAuthor(t, "race-author", "Ann", "Race")
	const n = 16
	got := together(n, func(i int) answer {
		inst := []*instance{a, b}[i%2]
		return inst.send(http.MethodPut, "/authors/race-author", fmt.Sprintf(`{"firstName":"Ann %d","lastName":"Race"}`, i), hdr("If-Match", `"1"`))
	})
	won := 0
	for i, g := range got {
		switch {
		case g.err != nil:
			t.Fatalf("request %d: %v", i, g.err)
		case g.status == http.StatusOK:
			won++
			if g.etag != `"2"` {
				t.Fatalf("the winner's ETag is %s, want \"2\"", g.etag)
			}
		case g.status == http.StatusPreconditionFailed && problemCode(g.body) == "version_mismatch":
		default:
			t.Fatalf("request %d: %d %s, want 200 or 412 version_mismatch", i, g.status, g.body)
		}
	}
	if won != 1 {
		t.Fatalf("%d updates won, want exactly 1: %+v", won, got)
	}
	if evs := h.events("authors", "race-author"); !slices.Equal(evs, []string{"AuthorCreated", "AuthorUpdated"}) {
		t.Fatalf("events: %v, want one AuthorCreated and one AuthorUpdated", evs)
	}
}

// A retry of an idempotent write that was applied is answered as the first
// try was, even when the service's precheck would refuse the command now:
// the book was created with its author; the author was deleted since; the
// retry must not say that the author does not exist (the client would take
// the book for not created, and create it again under a new key).
func TestRetryAfterTheAuthorWasDeleted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()
	inst.createAuthor(t, "ada-gone", "Ada", "Gone")
	key := hdr("Idempotency-Key", "ada-book-1")
	body := map[string]any{"title": "Notes", "authorCode": "ada-gone"}
	first := inst.createBook(t, body, key)
	inst.do(http.MethodDelete, "/authors/ada-gone", nil, nil).expect(t, http.StatusNoContent, nil)
	again := inst.createBook(t, body, key)
	if again.ID != first.ID || again.Version != first.Version || again.Title != first.Title {
		t.Fatalf("the retry answered %v, the first try %v", again, first)
	}
	// The same for a change of author, and through the CQRS endpoint.
	inst.createAuthor(t, "bea-gone", "Bea", "Gone")
	setKey := hdr("Idempotency-Key", "set-bea-1")
	set := inst.putBook(t, first.ID, "/author", map[string]any{"authorCode": "bea-gone"}, setKey)
	inst.do(http.MethodDelete, "/authors/bea-gone", nil, nil).expect(t, http.StatusNoContent, nil)
	if again := inst.putBook(t, first.ID, "/author", map[string]any{"authorCode": "bea-gone"}, setKey); again.Version != set.Version {
		t.Fatalf("the retried PUT answered %v, the first try %v", again, set)
	}
	var accepted struct {
		MsgID string `json:"msgId"`
	}
	inst.do(http.MethodPost, "/books/commands", `{"type":"SetBookAuthor","id":"`+first.ID+`","authorCode":"bea-gone"}`, setKey).expect(t, http.StatusAccepted, &accepted)
	var out outcomeView
	inst.get("/books/commands/"+accepted.MsgID+"?wait=5s").expect(t, http.StatusOK, &out)
	if out.Status != "accepted" || out.Version != set.Version {
		t.Fatalf("the retry through /books/commands: %+v, want the first try's outcome (version %d)", out, set.Version)
	}
	// A first try is still refused, and the refusal applies nothing:
	// once the author exists, the same key applies the command.
	fresh := hdr("Idempotency-Key", "cy-book-1")
	cyBody := map[string]any{"title": "Later", "authorCode": "cy-later"}
	inst.do(http.MethodPost, "/books", cyBody, fresh).expectProblem(t, http.StatusUnprocessableEntity, "authorCode")
	inst.createAuthor(t, "cy-later", "Cy", "Later")
	if b := inst.createBook(t, cyBody, fresh); b.AuthorCode == nil || *b.AuthorCode != "cy-later" {
		t.Fatalf("created %v, want a book of cy-later", b)
	}
	if evs := eventNames(h.bookEvents(first.ID)); evs[0] != "BookCreated" || slices.Index(evs[1:], "BookCreated") >= 0 {
		t.Fatalf("events of %s: %v", first.ID, evs)
	}
}

// A write whose outcome did not arrive within WRITE_TIMEOUT (504, with its
// msgId) and is retried with the same key while the first try is still
// being committed: the retry gets the first try's answer, the author is
// created once, and the msgId of the 504 shows that outcome.
func TestRetryAfterA504WhileTheFirstTryCommits(t *testing.T) {
	t.Parallel()
	var armed atomic.Bool
	gate := make(chan struct{})
	h := newHarness(t, func(h *harness) {
		h.Configure = func(c *config.Config) { c.WriteTimeout = time.Second }
		h.BeforeCommit = func(ctx context.Context) error {
			if !armed.Load() {
				return nil
			}
			select {
			case <-gate:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
	inst := h.start()
	armed.Store(true)
	key := hdr("Idempotency-Key", "slow-create-1")
	body := authorBody("slow-author", "Slow", "Author")
	p := inst.do(http.MethodPost, "/authors", body, key).expectProblem(t, http.StatusGatewayTimeout, "")
	if p.MsgID == "" {
		t.Fatalf("the 504 names no msgId: %+v", p)
	}
	retry := make(chan answer, 1)
	go func() {
		retry <- inst.send(http.MethodPost, "/authors", `{"code":"slow-author","firstName":"Slow","lastName":"Author"}`, key)
	}()
	// Release the first try once the retry is on the commands topic too.
	poll(t, "the retry to reach the commands topic", func() error {
		if n := len(h.readUncommitted(h.Service + ".authors.commands")); n < 2 {
			return fmt.Errorf("%d commands", n)
		}
		return nil
	})
	close(gate)
	var got answer
	select {
	case got = <-retry:
	case <-time.After(60 * time.Second):
		t.Fatal("the retry was not answered within 60s")
	}
	if got.err != nil || got.status != http.StatusCreated || got.etag != `"1"` {
		t.Fatalf("the retry: %+v, want 201 with ETag \"1\"", got)
	}
	if evs := h.events("authors", "slow-author"); !slices.Equal(evs, []string{"AuthorCreated"}) {
		t.Fatalf("events: %v, want one AuthorCreated", evs)
	}
	var out outcomeView
	inst.get("/authors/commands/"+p.MsgID+"?wait=5s").expect(t, http.StatusOK, &out)
	if out.Status != "accepted" || out.Version != 1 {
		t.Fatalf("outcome of %s: %+v", p.MsgID, out)
	}
}
