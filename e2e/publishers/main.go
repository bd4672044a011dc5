// Command publishers serves the generic web page of package web for one
// aggregate that the catalog does not have, publishers, kept in memory
// behind a small JSON API of the same shape as the catalog's: the
// end-to-end test (e2e/generic.test.mjs) drives the page's generic views
// and live panel with it. It is a test fixture, not a service.
//
//	publishers -addr 127.0.0.1:8080
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bookscatalog/catalog/internal/web"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	s := newStore()
	feed := web.NewFeed(s, web.FeedConfig{})
	defer feed.Close()
	mux := http.NewServeMux()
	for pattern, h := range web.Handlers(web.Config{Title: "Publishers demo", Feed: feed, Aggregates: []web.Aggregate{{
		Name: "publishers", Singular: "publisher", Key: "id", Label: []string{"{name}"},
		Fields: []web.Field{
			{Name: "id", Label: "Id", Hint: "Lower-case letters and dashes.", Create: true},
			{Name: "name", Label: "Name", Create: true, Update: true},
			{Name: "city", Label: "City", Optional: true, Create: true, Update: true},
		},
		Forms: web.Forms{Create: true, Update: true, Delete: true, DeleteVerb: "Close", Deleted: "closed"},
		Events: []web.EventLabel{
			{Type: "PublisherFounded", Describe: []string{"Founded as {name} in {city}", "Founded as {name}"}, Summary: []string{"{name}"}},
			{Type: "PublisherChanged", Describe: []string{"Now {name}, in {city}", "Now {name}"}, Summary: []string{"{name}"}},
			{Type: "PublisherClosed", Describe: []string{"Closed"}},
		},
		Topic: "demo.publishers.events",
	}}}) {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("GET /publishers", s.list)
	mux.HandleFunc("POST /publishers", s.create)
	mux.HandleFunc("GET /publishers/{id}", s.get)
	mux.HandleFunc("PUT /publishers/{id}", s.update)
	mux.HandleFunc("DELETE /publishers/{id}", s.remove)
	mux.HandleFunc("GET /publishers/{id}/history", s.history)
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	slog.Info("serving", "addr", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type publisher struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	City    string `json:"city,omitempty"`
	Version int64  `json:"version"`
}

type recorded struct {
	Position int64           `json:"position"`
	Version  int64           `json:"version"`
	Type     string          `json:"type"`
	Time     time.Time       `json:"time"`
	Event    json.RawMessage `json:"event"`
	state    *publisher      // after the event; nil once closed
}

// store holds the publishers and their events, and is the feed's source.
type store struct {
	mu      sync.Mutex
	events  map[string][]recorded
	offset  int64
	waiting []chan web.Event
}

func newStore() *store { return &store{events: map[string][]recorded{}} }

// Run implements web.Source: it hands over every event appended from now
// on.
func (s *store) Run(ctx context.Context, ready func([]web.Event), emit func(web.Event)) error {
	c := make(chan web.Event, 100)
	s.mu.Lock()
	s.waiting = append(s.waiting, c)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waiting = slices.DeleteFunc(s.waiting, func(w chan web.Event) bool { return w == c })
		s.mu.Unlock()
	}()
	ready(nil)
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-c:
			emit(e)
		}
	}
}

func (s *store) current(id string) *publisher {
	evs := s.events[id]
	if len(evs) == 0 {
		return nil
	}
	return evs[len(evs)-1].state
}

// append records an event of id leading to state; s.mu is held.
func (s *store) append(id, typ string, state *publisher, fields map[string]any) {
	evs := s.events[id]
	fields["type"] = typ
	fields["id"] = id
	b, _ := json.Marshal(fields)
	version := int64(1)
	if state != nil {
		version = state.Version
	} else if prev := s.current(id); prev != nil {
		version = prev.Version + 1
	}
	r := recorded{Position: int64(len(evs) + 1), Version: version, Type: typ, Time: time.Now(), Event: b, state: state}
	s.events[id] = append(evs, r)
	s.offset++
	e := web.Event{Aggregate: "publishers", Topic: "demo.publishers.events", Offset: s.offset, Key: id, Type: typ,
		Version: version, Position: r.Position, Timestamp: r.Time, Event: b}
	for _, c := range s.waiting {
		select {
		case c <- e:
		default:
		}
	}
}

func write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func problem(w http.ResponseWriter, status int, field, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	p := map[string]any{"title": http.StatusText(status), "status": status, "detail": detail}
	if field != "" {
		p["field"] = field
	}
	_ = json.NewEncoder(w).Encode(p)
}

var idRE = regexp.MustCompile(`^[a-z][a-z-]*$`)

func (s *store) list(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	items := []*publisher{}
	for id := range s.events {
		if p := s.current(id); p != nil && id > r.URL.Query().Get("after") {
			items = append(items, p)
		}
	}
	slices.SortFunc(items, func(a, b *publisher) int { return strings.Compare(a.ID, b.ID) })
	write(w, http.StatusOK, map[string]any{"items": items})
}

type input struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	City string `json:"city"`
}

func (s *store) create(w http.ResponseWriter, r *http.Request) {
	var in input
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		problem(w, http.StatusBadRequest, "", err.Error())
		return
	}
	switch {
	case !idRE.MatchString(in.ID):
		problem(w, http.StatusUnprocessableEntity, "id", "id must be lower-case letters and dashes")
		return
	case in.Name == "":
		problem(w, http.StatusUnprocessableEntity, "name", "name is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current(in.ID) != nil {
		problem(w, http.StatusConflict, "id", "publisher "+in.ID+" exists already")
		return
	}
	p := &publisher{ID: in.ID, Name: in.Name, City: in.City, Version: 1}
	s.append(in.ID, "PublisherFounded", p, map[string]any{"name": in.Name, "city": in.City})
	write(w, http.StatusCreated, p)
}

func (s *store) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.current(id)
	if pos := r.URL.Query().Get("position"); pos != "" {
		n, _ := strconv.Atoi(pos)
		p = nil
		if evs := s.events[id]; n >= 1 && n <= len(evs) {
			p = evs[n-1].state
		}
	}
	if p == nil {
		problem(w, http.StatusNotFound, "", "publisher "+id+" not found")
		return
	}
	write(w, http.StatusOK, p)
}

// prior returns the publisher id if the request's If-Match is its
// version, else answers.
func (s *store) prior(w http.ResponseWriter, r *http.Request, id string) *publisher {
	p := s.current(id)
	if p == nil {
		problem(w, http.StatusNotFound, "", "publisher "+id+" not found")
		return nil
	}
	if m := r.Header.Get("If-Match"); m != "" && m != fmt.Sprintf(`"%d"`, p.Version) {
		problem(w, http.StatusPreconditionFailed, "", fmt.Sprintf("publisher %s is at version %d", id, p.Version))
		return nil
	}
	return p
}

func (s *store) update(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var in input
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		problem(w, http.StatusBadRequest, "", err.Error())
		return
	}
	if in.Name == "" {
		problem(w, http.StatusUnprocessableEntity, "name", "name is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.prior(w, r, id)
	if p == nil {
		return
	}
	next := &publisher{ID: id, Name: in.Name, City: in.City, Version: p.Version + 1}
	s.append(id, "PublisherChanged", next, map[string]any{"name": in.Name, "city": in.City})
	write(w, http.StatusOK, next)
}

func (s *store) remove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prior(w, r, id) == nil {
		return
	}
	s.append(id, "PublisherClosed", nil, map[string]any{})
	w.WriteHeader(http.StatusNoContent)
}

func (s *store) history(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := slices.Clone(s.events[id])
	if len(evs) == 0 {
		problem(w, http.StatusNotFound, "", "publisher "+id+" has no history")
		return
	}
	total := len(evs)
	if q.Get("order") == "desc" {
		slices.Reverse(evs)
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = 20
	}
	after, _ := strconv.Atoi(q.Get("after")) // an index into the ordered events
	evs = evs[min(after, len(evs)):]
	page := map[string]any{"items": evs[:min(limit, len(evs))], "total": total}
	if len(evs) > limit {
		page["next"] = strconv.Itoa(after + limit)
	}
	write(w, http.StatusOK, page)
}
