package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"

	"github.com/bookscatalog/catalog/codec/jsoncodec"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/httpapi"
)

// A counter is about the smallest aggregate there is: Add raises its
// total.
type counter struct {
	Total   int64 `json:"total"`
	Version int64 `json:"version"`
}

type add struct {
	Name string `json:"name"`
	N    int64  `json:"n"`
}

type added struct {
	N int64 `json:"n"`
}

// refused is the domain's rejection of a command.
type refused string

func (r refused) Error() string         { return string(r) }
func (r refused) RejectionCode() string { return "invalid" }

func counters() es.Aggregate[counter, add, added] {
	return es.Aggregate[counter, add, added]{
		Name: "counters",
		Decide: func(_ counter, c add) ([]added, error) {
			if c.N < 1 {
				return nil, refused("n must be positive")
			}
			return []added{{N: c.N}}, nil
		},
		Evolve:  func(s counter, e added) counter { return counter{Total: s.Total + e.N, Version: s.Version + 1} },
		Key:     func(c add) string { return c.Name },
		Version: func(s counter) int64 { return s.Version },
		Exists:  func(s counter) bool { return s.Version > 0 },
	}
}

// memory runs each command at once against states in memory, doing what
// eskafka.Gateway (Writer) and eskafka.Processor (Reader) do on Kafka.
type memory struct {
	agg     es.Aggregate[counter, add, added]
	mu      sync.Mutex
	states  map[string]counter
	results map[string]*eskafka.Result[counter, added]
}

func (m *memory) Send(_ context.Context, c add, opt eskafka.SendOptions) (eskafka.Sent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, events, rej := m.agg.Handle(m.states[c.Name], c, opt.ExpectedVersion)
	res := &eskafka.Result[counter, added]{Outcome: &eskafka.Outcome{MsgID: opt.MsgID, Key: c.Name, Status: eskafka.StatusAccepted, Rejection: rej}, State: s, Events: events}
	if rej != nil {
		res.Status = eskafka.StatusRejected
	} else {
		m.states[c.Name] = s
	}
	m.results[opt.MsgID] = res
	return eskafka.Sent{MsgID: opt.MsgID}, nil
}

func (m *memory) Await(_ context.Context, sent eskafka.Sent) (*eskafka.Result[counter, added], error) {
	if res, ok, _ := m.Lookup(sent.MsgID); ok {
		return res, nil
	}
	return nil, errors.New("no outcome")
}

func (m *memory) Lookup(msgID string) (*eskafka.Result[counter, added], bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	res, ok := m.results[msgID]
	return res, ok, nil
}

func (m *memory) Get(key string) (counter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.states[key]
	if !ok {
		return s, eskafka.ErrNotFound
	}
	return s, nil
}

func (m *memory) List(after string, limit int) ([]counter, []string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.states {
		if k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	keys = keys[:min(limit, len(keys))]
	items := make([]counter, len(keys))
	for i, k := range keys {
		items[i] = m.states[k]
	}
	return items, keys, false, nil
}

// Serve an aggregate over HTTP: one Resource, registered with one call.
// Its name, its key and its versions (ETags) come from the aggregate; the
// resource declares the singular of its name, the name of its key in
// paths, and its write endpoints.
func Example() {
	agg := counters()
	store := &memory{agg: agg, states: map[string]counter{}, results: map[string]*eskafka.Result[counter, added]{}}
	var cfg httpapi.Config
	cfg.Handle(&httpapi.Resource[counter, add, added]{
		Aggregate: agg, Singular: "counter", KeyName: "name",
		Writer: store, Reader: store,
		Commands: jsoncodec.NewUnion(add{}), Events: jsoncodec.NewUnion(added{}),
		Writes: []httpapi.Write[counter, add, added]{{
			// POST /counters/{name} {"n": 2} adds 2.
			Method: http.MethodPost, Path: "/{key}", Status: http.StatusOK,
			Command: func(r *httpapi.WriteRequest) (add, *httpapi.Problem) {
				var body struct {
					N int64 `json:"n"`
				}
				if p := r.Decode(&body); p != nil {
					return add{}, p
				}
				return add{Name: r.Key, N: body.N}, nil
			},
		}},
	})
	api := httpapi.New(cfg)

	for _, req := range []struct{ method, path, body string }{
		{"POST", "/counters/visits", `{"n":2}`},
		{"POST", "/counters/visits", `{"n":3}`},
		{"POST", "/counters/visits", `{"n":0}`},
		{"GET", "/counters/visits", ""},
		{"GET", "/counters/nothing", ""},
		{"POST", "/counters/commands", `{"type":"add","name":"hits","n":1}`},
		{"GET", "/counters", ""},
	} {
		r := httptest.NewRequest(req.method, req.path, strings.NewReader(req.body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		var problem httpapi.Problem
		switch {
		case w.Code == http.StatusAccepted:
			// The body is the command's id, to look its outcome up.
			fmt.Printf("%s %s: %d, outcome at /counters/commands/{msgId}\n", req.method, req.path, w.Code)
		case json.Unmarshal(w.Body.Bytes(), &problem) == nil && problem.Status != 0:
			fmt.Printf("%s %s: %d %s\n", req.method, req.path, w.Code, problem.Detail)
		case w.Header().Get("ETag") != "":
			fmt.Printf("%s %s: %d ETag %s %s", req.method, req.path, w.Code, w.Header().Get("ETag"), w.Body.String())
		default:
			fmt.Printf("%s %s: %d %s", req.method, req.path, w.Code, w.Body.String())
		}
	}
	// Output:
	// POST /counters/visits: 200 ETag "1" {"total":2,"version":1}
	// POST /counters/visits: 200 ETag "2" {"total":5,"version":2}
	// POST /counters/visits: 422 n must be positive
	// GET /counters/visits: 200 ETag "2" {"total":5,"version":2}
	// GET /counters/nothing: 404 counter "nothing" not found
	// POST /counters/commands: 202, outcome at /counters/commands/{msgId}
	// GET /counters: 200 {"items":[{"total":1,"version":1},{"total":5,"version":2}]}
}
