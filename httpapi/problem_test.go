package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/internal/domain"
)

func TestQuoted(t *testing.T) {
	at64 := strings.Repeat("a", maxEcho)
	for _, c := range []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{"a\"b\x00", `"a\"b\x00"`},
		{at64, `"` + at64 + `"`},
		{at64 + "b", `"` + at64 + `"…`},
		// A rune across the cut is left out whole.
		{strings.Repeat("a", maxEcho-1) + "é" + "z", `"` + strings.Repeat("a", maxEcho-1) + `"…`},
		{strings.Repeat("a", maxEcho-2) + "€" + "z", `"` + strings.Repeat("a", maxEcho-2) + `"…`},
		// Invalid UTF-8 is still cut near the limit, and quoted.
		{strings.Repeat("\x80", 1000), `"` + strings.Repeat(`\x80`, maxEcho-utf8.UTFMax+1) + `"…`},
	} {
		if got := quoted(c.in); got != c.want {
			t.Errorf("quoted(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := clip(at64 + "xyz"); got != at64+"…" {
		t.Errorf("clip = %q", got)
	}
	if got := clip("short"); got != "short" {
		t.Errorf("clip = %q", got)
	}
}

// TestProblemsEchoExcerpts sends a long value wherever a problem repeats
// request input: the detail names it by a short excerpt only.
func TestProblemsEchoExcerpts(t *testing.T) {
	big := strings.Repeat("z", 10_000)
	api := fuzzAPI()
	for _, c := range []struct {
		name, method, path, body, header, value string
		status                                  int
	}{
		{"If-Match", "PUT", "/people/ja", `{"name":"J"}`, "If-Match", `"` + big + `"`, 400},
		{"Content-Type", "POST", "/people", `{}`, "Content-Type", "text/" + big, 415},
		{"limit", "GET", "/people?limit=" + big, "", "", "", 400},
		{"local", "GET", "/people?local=" + big, "", "", "", 400},
		{"wait", "GET", "/people/commands/m?wait=" + big, "", "", "", 400},
		{"msgId", "GET", "/people/commands/" + strings.Repeat("m", 128), "", "", "", 404},
		{"path value", "DELETE", "/people/ja/nicknames/" + big, "", "", "", 400},
		{"path", "GET", "/" + big, "", "", "", 404},
		{"path of a wrong method", "PATCH", "/people/" + big, "", "", "", 405},
		{"command type", "POST", "/people/commands", `{"type":"` + big + `"}`, "", "", 422},
		{"id in the body", "PUT", "/people/ja", `{"id":"` + big + `","name":"J"}`, "", "", 422},
		{"unknown member", "POST", "/people", `{"` + big + `":1}`, "", "", 400},
		{"duplicate member", "POST", "/people/commands", `{"` + big + `":1,"` + big + `":2}`, "", "", 400},
		{"number out of range", "POST", "/people/commands", `{"type":"dropNickname","id":"ja","index":` + strings.Repeat("9", 10_000) + `}`, "", "", 422},
		{"Host", "GET", "/people", "", "Host", big + ".example", 421},
	} {
		r := httptest.NewRequest(c.method, "/", strings.NewReader(c.body))
		r.URL = &url.URL{Path: strings.SplitN(c.path, "?", 2)[0]}
		if i := strings.IndexByte(c.path, '?'); i >= 0 {
			r.URL.RawQuery = c.path[i+1:]
		}
		r.RequestURI = ""
		if c.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		cfg := testConfig()
		h := api
		switch c.header {
		case "Host":
			r.Host = c.value
			cfg.AllowedHosts = []string{"localhost"}
			h = New(cfg)
		case "":
		default:
			r.Header.Set(c.header, c.value)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != c.status {
			t.Errorf("%s: %d %.200s (%v), want %d", c.name, rec.Code, rec.Body.Bytes(), err, c.status)
			continue
		}
		if len(p.Detail) > maxDetail || strings.Contains(p.Detail, strings.Repeat("z", 2*maxEcho)) || strings.Contains(p.Detail, strings.Repeat("9", 2*maxEcho)) {
			t.Errorf("%s: detail of %d bytes echoes the input: %.300s", c.name, len(p.Detail), p.Detail)
		}
		if !strings.Contains(p.Detail, "…") {
			t.Errorf("%s: detail %q does not show the cut", c.name, p.Detail)
		}
		if len(p.Field) > maxEcho+len("…") {
			t.Errorf("%s: field of %d bytes", c.name, len(p.Field))
		}
	}
}

func TestRejectionStatus(t *testing.T) {
	for _, c := range []struct {
		code   string
		status int
	}{
		{domain.CodeNotFound, http.StatusNotFound},
		{domain.CodeAlreadyExists, http.StatusConflict},
		{domain.CodeInvalid, http.StatusUnprocessableEntity},
		{domain.CodeUnknownReference, http.StatusUnprocessableEntity},
		{domain.CodeTooLarge, http.StatusUnprocessableEntity},
		{"too_large", http.StatusUnprocessableEntity},
		{es.CodeIdempotencyKeyReused, http.StatusUnprocessableEntity},
		{"idempotency_key_reused", http.StatusUnprocessableEntity},
		{es.CodeVersionMismatch, http.StatusPreconditionFailed},
		{es.CodeMalformedCommand, http.StatusBadRequest},
		{es.CodeInternal, http.StatusInternalServerError},
		{es.CodeCorruptState, http.StatusInternalServerError},
		{"corrupt_state", http.StatusInternalServerError},
		{"a_code_from_the_future", http.StatusUnprocessableEntity},
	} {
		p := rejectionProblem(&es.Rejection{Code: c.code, Field: "f", Message: "m"}, "msg-1")
		if p.Status != c.status || p.Code != c.code || p.Field != "f" || p.Detail != "m" || p.MsgID != "msg-1" {
			t.Errorf("rejection %q: %+v, want status %d", c.code, p, c.status)
		}
	}
}

// TestTooLargeThroughTheAPI: an aggregate's limits reach the writer as a 422
// naming what would grow too much.
func TestTooLargeThroughTheAPI(t *testing.T) {
	rec := httptest.NewRecorder()
	writeProblem(rec, rejectionProblem(&es.Rejection{Code: domain.CodeTooLarge, Field: "chapters", Message: "too many chapters"}, "m"))
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != http.StatusUnprocessableEntity ||
		p.Code != "too_large" || p.Field != "chapters" || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d %s (%v)", rec.Code, rec.Body.Bytes(), err)
	}
}

// TestWrongMethodOffersOnlyWhatServes: a path that only the wide
// /{name}/{key}/{sub} route matches is 404 for every method unless the
// route answers it, and 405 names only the methods that do.
func TestWrongMethodOffersOnlyWhatServes(t *testing.T) {
	api := fuzzAPI()
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"POST", "/people/ja/foo", http.StatusNotFound, ""},
		{"PUT", "/people/ja/nicknames", http.StatusNotFound, ""},
		{"POST", "/people/ja/history", http.StatusMethodNotAllowed, "GET"},
		{"PUT", "/people/commands/m1", http.StatusMethodNotAllowed, "GET"},
		{"PATCH", "/people/ja", http.StatusMethodNotAllowed, "GET, PUT, DELETE"},
	} {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status || rec.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %d, Allow %q (%s), want %d, Allow %q", c.method, c.path, rec.Code, rec.Header().Get("Allow"), rec.Body.Bytes(), c.status, c.allow)
		}
	}
	// GET on the same paths agrees.
	for path, status := range map[string]int{"/people/ja/foo": http.StatusNotFound, "/people/ja/nicknames": http.StatusNotFound} {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != status {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, status)
		}
	}
}
