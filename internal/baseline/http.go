package baseline

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

// authorJSON is the service's JSON of an author (catalogapi.AuthorView), kept
// here rather than imported so that the baseline carries none of the API's
// code; a test checks that the two agree.
type authorJSON struct {
	Code      string `json:"code"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Version   int64  `json:"version"`
}

// authorMap is the bare server's whole state.
type authorMap struct {
	mu sync.RWMutex
	m  map[string]authorJSON
}

// HTTPHandler returns the bare HTTP baseline: a plain http.ServeMux, no
// middleware, with
//
//   - GET /authors/{code}: 200 with the author's JSON as the service
//     writes it (Content-Type application/json, ETag "version", the
//     object and a newline), or 404;
//   - POST /authors: stores {"code","firstName","lastName"} as version 1
//     and answers 201 as the service does, or 409 if the code is taken,
//     400 if the body does not decode or has no code; so that
//     catalog loadgen -mode http-read can create the authors it reads;
//   - GET /readyz: 200, which the load generator asks first.
//
// It does what the service's read path cannot avoid (route, look up,
// encode, write) and nothing else: no host check, authentication, limits,
// logging, metrics, validation or forwarding.
func HTTPHandler() http.Handler {
	a := &authorMap{m: map[string]authorJSON{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authors/{code}", a.get)
	mux.HandleFunc("POST /authors", a.create)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return mux
}

func (a *authorMap) get(w http.ResponseWriter, r *http.Request) {
	a.mu.RLock()
	v, ok := a.m[r.PathValue("code")]
	a.mu.RUnlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	writeAuthor(w, http.StatusOK, v)
}

func (a *authorMap) create(w http.ResponseWriter, r *http.Request) {
	var v authorJSON
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&v); err != nil || v.Code == "" {
		http.Error(w, "want {\"code\",\"firstName\",\"lastName\"}", http.StatusBadRequest)
		return
	}
	v.Version = 1
	a.mu.Lock()
	_, taken := a.m[v.Code]
	if !taken {
		a.m[v.Code] = v
	}
	a.mu.Unlock()
	if taken {
		http.Error(w, "author exists", http.StatusConflict)
		return
	}
	w.Header().Set("Location", "/authors/"+v.Code)
	writeAuthor(w, http.StatusCreated, v)
}

// writeAuthor writes v as the service's httpapi does (resource.etag and
// writeJSON).
func writeAuthor(w http.ResponseWriter, status int, v authorJSON) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(v.Version, 10)+`"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a client gone is no concern here
}
