package baseline

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/internal/catalogapi"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/loadgen"
)

// The bare server answers with the bytes and headers the service's API
// writes for the same author.
func TestHTTPSameJSONAsTheService(t *testing.T) {
	srv := httptest.NewServer(HTTPHandler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/authors", "application/json",
		strings.NewReader(`{"code":"jane-austen","firstName":"Jane","lastName":"Austen"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != "/authors/jane-austen" {
		t.Fatalf("POST /authors: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, err = http.Get(srv.URL + "/authors/jane-austen")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(catalogapi.RenderAuthor(author.State{Code: "jane-austen", FirstName: "Jane", LastName: "Austen", Version: 1})); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != want.String() ||
		resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("ETag") != `"1"` {
		t.Fatalf("GET: %s %q, Content-Type %q, ETag %q; want 200 %q, application/json, \"1\"",
			resp.Status, body, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"), want.String())
	}
	for path, status := range map[string]int{"/authors/mary-shelley": http.StatusNotFound, "/readyz": http.StatusOK} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, status)
		}
	}
}

// The load generator's read mode seeds it and reads from it.
func TestHTTPServesTheLoadGenerator(t *testing.T) {
	srv := httptest.NewServer(HTTPHandler())
	defer srv.Close()
	rep, err := loadgen.Run(t.Context(), loadgen.Options{
		Mode: loadgen.ModeHTTPRead, URLs: []string{srv.URL}, Seed: 20,
		Clients: 4, Count: 200, Timeout: 10 * time.Second, ProgressEvery: -1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seeded != 20 || rep.Successes != 200 || rep.Errors != 0 {
		t.Fatalf("seeded %d, %d of 200 reads answered 200, errors %v", rep.Seeded, rep.Successes, rep.ErrorKinds)
	}
}
