package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/metrics"
)

// mapReader answers from a map, like a bare server.
type mapReader map[string]person

func (m mapReader) Get(k string) (person, error) {
	s, ok := m[k]
	if !ok {
		return s, eskafka.ErrNotFound
	}
	return s, nil
}

func (mapReader) List(string, int) ([]person, []string, bool, error) {
	return nil, nil, false, nil
}

// BenchmarkGetOne measures the API's own cost of GET /people/{id}
// (routing, host check, metrics, logging, validation, rendering) over an
// in-memory reader, beside a bare handler that answers the same JSON from a
// map: the difference is what the stack adds to a read.
func BenchmarkGetOne(b *testing.B) {
	st := person{ID: "jane-austen", Name: "Jane Austen", Version: 3}
	b.Run("api", func(b *testing.B) {
		cfg := testConfig()
		peopleIn(cfg).Reader = mapReader{st.ID: st}
		cfg.Observe = metrics.New().Request
		cfg.AllowedHosts = DefaultAllowedHosts("localhost:9081", "http://localhost:9081")
		h := New(cfg)
		req := httptest.NewRequest(http.MethodGet, "http://localhost:9081/people/jane-austen", nil)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
	b.Run("bare", func(b *testing.B) {
		m := map[string]person{st.ID: st}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /people/{id}", func(w http.ResponseWriter, r *http.Request) {
			s, ok := m[r.PathValue("id")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(s)
		})
		req := httptest.NewRequest(http.MethodGet, "http://localhost:9081/people/jane-austen", nil)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, req)
		}
	})
}
