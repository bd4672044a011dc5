package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A body in a content coding the API does not decode (RFC 9110 §8.4) is
// refused with 415 naming Content-Encoding, not read as if it were JSON: a
// gzip body was a 400 "not valid UTF-8", and a body labelled br that
// happened to be plain JSON was taken.
func TestContentEncodingIsNamed(t *testing.T) {
	api := fuzzAPI()
	body := `{"id":"ja","name":"J"}`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(body))
	zw.Close()
	for _, c := range []struct {
		name, encoding, body, path string
		status                     int
	}{
		{"gzip", "gzip", gz.String(), "/people", http.StatusUnsupportedMediaType},
		{"gzip command", "gzip", gz.String(), "/people/commands", http.StatusUnsupportedMediaType},
		{"br, plain body", "br", body, "/people", http.StatusUnsupportedMediaType},
		{"identity", "identity", body, "/people", http.StatusCreated},
		{"none", "", body, "/people", http.StatusCreated},
	} {
		r := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body))
		r.Header.Set("Content-Type", "application/json")
		if c.encoding != "" {
			r.Header.Set("Content-Encoding", c.encoding)
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		if rec.Code != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, rec.Code, c.status, rec.Body.Bytes())
			continue
		}
		if c.status < 400 {
			continue
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Field != "Content-Encoding" || !strings.Contains(p.Detail, c.encoding) {
			t.Errorf("%s: problem %s (%v), want one naming Content-Encoding %q", c.name, rec.Body.Bytes(), err, c.encoding)
		}
	}
}
