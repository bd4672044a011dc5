package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
)

func peopleAPI(res *Resource[person, personCommand, personEvent]) http.Handler {
	cfg := Config{Health: readyHealth{}}
	cfg.Handle(res)
	return New(cfg)
}

// The name, key and version come from the aggregate, messages use the
// declared singular, and a write declared by the resource goes the way of
// every write: Precheck, If-Match, ETag, Location.
func TestResourceFromTheAggregate(t *testing.T) {
	h := peopleAPI(peopleResource())
	w := (call{"GET", "/people/ada", "", ""}).do(t, h)
	if w.Code != 404 || !strings.Contains(w.Body.String(), `person \"ada\" not found`) {
		t.Fatalf("GET of a missing person: %d %s", w.Code, w.Body.String())
	}
	w = (call{"GET", "/people/a%20b", "", ""}).do(t, h)
	if p := decodeProblem(t, w); w.Code != 400 || p.Field != "id" || !strings.Contains(p.Detail, "malformed id in path: must be lower-case") {
		t.Fatalf("GET of a malformed key: %d %s", w.Code, w.Body.String())
	}

	w = (call{"POST", "/people", "", `{"id":"ada","name":"Ada"}`}).do(t, h)
	if w.Code != 201 || w.Header().Get("Location") != "/people/ada" || w.Header().Get("ETag") != `"1"` {
		t.Fatalf("POST /people: %d %v %s", w.Code, w.Header(), w.Body.String())
	}
	var got person
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Name != "Ada" {
		t.Fatalf("POST /people answered %s (%v); want the state as it is (no Render)", w.Body.String(), err)
	}
	for _, c := range []struct {
		call
		header []string
		status int
		field  string
	}{
		{call{"POST", "/people", "", `{"id":"ada","name":"nobody"}`}, nil, 422, "name"},
		{call{"POST", "/people/commands", "", `{"type":"addPerson","id":"ada","name":"nobody"}`}, nil, 422, "name"},
		{call{"POST", "/people", "", `{"id":"a b","name":"Ada"}`}, nil, 422, "id"},
		{call{"POST", "/people/commands", "", `{"type":"addPerson","id":"a b","name":"Ada"}`}, nil, 422, "id"},
		{call{"POST", "/people", "", `{"id":"ada","name":"Ada"}`}, []string{"If-Match", `"3"`}, 412, ""},
		{call{"POST", "/people", "", `{"id":"ada","name":"Ada"}`}, []string{"If-Match", "x"}, 400, "If-Match"},
		// Once guessed at (a sign, stray or doubled quotes): refused.
		{call{"POST", "/people", "", `{"id":"ada","name":"Ada"}`}, []string{"If-Match", `"+3"`}, 400, "If-Match"},
		{call{"POST", "/people", "", `{"id":"ada","name":"Ada"}`}, []string{"If-Match", `"3`}, 400, "If-Match"},
		{call{"POST", "/people", "", `{"id":"ada","name":"Ada"}`}, []string{"If-Match", `""3""`}, 400, "If-Match"},
		{call{"POST", "/people", "", `{"id":"ada","name":"Ada"}`}, []string{"If-Match", `""`}, 400, "If-Match"},
		// A weakened tag (a proxy's) and a bare number still name a version.
		{call{"POST", "/people", "", `{"id":"ada","name":"Ada"}`}, []string{"If-Match", `W/"3"`}, 412, ""},
		{call{"POST", "/people", "", `{"id":"ada","name":"Ada"}`}, []string{"If-Match", `3`}, 412, ""},
	} {
		w := c.do(t, h, c.header...)
		if p := decodeProblem(t, w); w.Code != c.status || p.Field != c.field {
			t.Errorf("%s %s %s %v: %d %s, want %d with field %q", c.method, c.path, c.body, c.header, w.Code, w.Body.String(), c.status, c.field)
		}
	}
	w = (call{"POST", "/people/commands", "", `{"type":"addPerson","id":"bob","name":"Bob"}`}).do(t, h)
	if w.Code != 202 || !strings.HasPrefix(w.Header().Get("Location"), "/people/commands/") {
		t.Fatalf("POST /people/commands: %d %v %s", w.Code, w.Header(), w.Body.String())
	}
	if w := (call{"GET", w.Header().Get("Location"), "", ""}).do(t, h); w.Code != 200 || !strings.Contains(w.Body.String(), `"personAdded"`) {
		t.Fatalf("outcome: %d %s", w.Code, w.Body.String())
	}
	// Without History, no history; an unknown subresource is a 404.
	for path, status := range map[string]int{"/people/ada/history": 404, "/people/ada/friends": 404, "/people/ada?position=1": 400} {
		if w := (call{"GET", path, "", ""}).do(t, h); w.Code != status {
			t.Errorf("GET %s: %d %s, want %d", path, w.Code, w.Body.String(), status)
		}
	}
}

// A Read serves GET /{name}/{key}/{sub} with the key checked, the
// resource's not-found message, and forwarding to the read model's owner.
func TestResourceReads(t *testing.T) {
	res := peopleResource()
	res.Reads = map[string]Read{"friends": {Get: func(_ context.Context, key string) (any, error) {
		switch key {
		case "ada":
			return []string{"bob"}, nil
		case "elsewhere":
			return nil, eskafka.ErrNotOwner
		}
		return nil, eskafka.ErrNotFound
	}}}
	h := peopleAPI(res)
	for path, want := range map[string]struct {
		status int
		body   string
	}{
		"/people/ada/friends":       {200, `["bob"]`},
		"/people/zed/friends":       {404, `person \"zed\" not found`},
		"/people/a%20b/friends":     {400, "malformed id in path"},
		"/people/elsewhere/friends": {503, "being restored"},
	} {
		if w := (call{"GET", path, "", ""}).do(t, h); w.Code != want.status || !strings.Contains(w.Body.String(), want.body) {
			t.Errorf("GET %s: %d %s, want %d with %s", path, w.Code, w.Body.String(), want.status, want.body)
		}
	}
}

// A resource that lacks what it needs is refused when the API is made,
// naming what it lacks.
func TestResourceIncomplete(t *testing.T) {
	for name, c := range map[string]struct {
		change func(*Resource[person, personCommand, personEvent])
		want   string
	}{
		"no singular": {func(r *Resource[person, personCommand, personEvent]) { r.Singular = "" }, "Singular"},
		"no key name": {func(r *Resource[person, personCommand, personEvent]) { r.KeyName = "" }, "KeyName"},
		"no aggregate": {func(r *Resource[person, personCommand, personEvent]) {
			r.Aggregate = es.Aggregate[person, personCommand, personEvent]{}
		}, "Aggregate.Name"},
		"write of no use": {func(r *Resource[person, personCommand, personEvent]) { r.Writes[0].Status = 0 }, "Writes[0]"},
		"read as history": {func(r *Resource[person, personCommand, personEvent]) { r.Reads = map[string]Read{"history": {}} }, `"history"`},
	} {
		res := peopleResource()
		c.change(res)
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(v.(string), c.want) {
					t.Errorf("%s: panic %v, want it to name %s", name, v, c.want)
				}
			}()
			peopleAPI(res)
		}()
	}
}

// One resource mounted in two APIs serves each with its own settings.
func TestResourceMountedTwice(t *testing.T) {
	res := peopleResource()
	res.Writer = blockingWriter[person, personCommand, personEvent]{}
	var slow, fast Config
	slow.Handle(res)
	fast.Handle(res)
	slow.WriteTimeout, fast.WriteTimeout = 10*DefaultWriteWait, 1
	_ = New(slow)
	w := (call{"POST", "/people", "", `{"id":"ada","name":"Ada"}`}).do(t, New(fast))
	if w.Code != 504 || !strings.Contains(w.Body.String(), "within 1ns") {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

func decodeProblem(t *testing.T, w *httptest.ResponseRecorder) Problem {
	t.Helper()
	var p Problem
	if w.Code >= 400 {
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("%d %s: %v", w.Code, w.Body.String(), err)
		}
	}
	return p
}

// slowWriter is a Writer whose Send and Await each take d (or until their
// context ends) before the inner writer's: Kafka slow to confirm the
// command, then slow to deliver its outcome.
type slowWriter[S, C, E any] struct {
	Writer[S, C, E]
	d time.Duration
}

func (s slowWriter[S, C, E]) wait(ctx context.Context) error {
	t := time.NewTimer(s.d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s slowWriter[S, C, E]) Send(ctx context.Context, cmd C, opt eskafka.SendOptions) (eskafka.Sent, error) {
	if err := s.wait(ctx); err != nil {
		return eskafka.Sent{MsgID: opt.MsgID}, fmt.Errorf("%w: %w", eskafka.ErrSendUnconfirmed, err)
	}
	return s.Writer.Send(ctx, cmd, opt)
}

func (s slowWriter[S, C, E]) Await(ctx context.Context, sent eskafka.Sent) (*eskafka.Result[S, E], error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.Writer.Await(ctx, sent)
}

// The write timeout bounds the whole write, not each of its steps: a
// command confirmed by Kafka after 70% of it and whose outcome takes as
// long again is answered 504 when the timeout is up. Before, the wait for
// the outcome had a timeout of its own, and all-brokers-down in the chaos
// test saw a write answered after 13.7 s with WRITE_TIMEOUT 10 s.
func TestWriteTimeoutBoundsTheWholeWrite(t *testing.T) {
	cfg := testConfig()
	cfg.WriteTimeout = time.Second
	people := peopleIn(cfg)
	people.Writer = slowWriter[person, personCommand, personEvent]{Writer: people.Writer, d: 700 * time.Millisecond}
	w := (call{"POST", "/people", "", `{"id":"ada","name":"Ada"}`}).do(t, New(cfg))
	if w.Code != http.StatusGatewayTimeout {
		t.Fatalf("send and outcome %v each, write timeout %v: %d %s, want 504", 700*time.Millisecond, cfg.WriteTimeout, w.Code, w.Body.String())
	}
	if p := decodeProblem(t, w); p.MsgID == "" {
		t.Fatalf("the 504 of a sent command names no msgId: %+v", p)
	}
}

// A command that names no aggregate (its Key is empty) is the request's
// fault, also without ValidKey: a 422 naming the key, not the 503 of the
// gateway's refusal (it used to be sent, and decided as the aggregate "").
func TestCommandWithoutKeyIsRefused(t *testing.T) {
	res := peopleResource()
	res.ValidKey = nil
	w := (call{"POST", "/people/commands", "", `{"type":"addPerson","name":"Ada"}`}).do(t, peopleAPI(res))
	if p := decodeProblem(t, w); w.Code != 422 || p.Field != "id" {
		t.Fatalf("a command without an id: %d %s; want 422 about the id", w.Code, w.Body.String())
	}
}
