package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/eskafka"
	"github.com/bookscatalog/catalog/internal/metrics"
)

// mapReader answers from a map, like a bare server.
type mapReader map[string]author.State

func (m mapReader) Get(k string) (author.State, error) {
	s, ok := m[k]
	if !ok {
		return s, eskafka.ErrNotFound
	}
	return s, nil
}

func (mapReader) List(string, int) ([]author.State, []string, bool, error) {
	return nil, nil, false, nil
}

// BenchmarkGetAuthor measures the API's own cost of GET /authors/{code}
// (routing, host check, metrics, logging, validation, rendering) over an
// in-memory reader, beside a bare handler that answers the same JSON from a
// map: the difference is what the stack adds to a read.
func BenchmarkGetAuthor(b *testing.B) {
	st := author.State{Code: "jane-austen", FirstName: "Jane", LastName: "Austen", Version: 3}
	b.Run("api", func(b *testing.B) {
		cfg := testConfig()
		authorsIn(cfg).Reader = mapReader{st.Code: st}
		cfg.Observe = metrics.New().Request
		cfg.AllowedHosts = DefaultAllowedHosts("localhost:9081", "http://localhost:9081")
		h := New(cfg)
		req := httptest.NewRequest(http.MethodGet, "http://localhost:9081/authors/jane-austen", nil)
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
		m := map[string]author.State{st.Code: st}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /authors/{code}", func(w http.ResponseWriter, r *http.Request) {
			s, ok := m[r.PathValue("code")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(RenderAuthor(s))
		})
		req := httptest.NewRequest(http.MethodGet, "http://localhost:9081/authors/jane-austen", nil)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, req)
		}
	})
}
