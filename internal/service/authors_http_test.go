package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/httpapi"
)

type authorView struct {
	Code      string `json:"code"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Version   int64  `json:"version"`
}

type authorPage struct {
	Items []authorView `json:"items"`
	Next  string       `json:"next"`
}

func authorBody(code, first, last string) map[string]string {
	return map[string]string{"code": code, "firstName": first, "lastName": last}
}

// create creates an author and checks the 201 answer.
func (i *instance) createAuthor(t testing.TB, code, first, last string) authorView {
	t.Helper()
	var a authorView
	r := i.do(http.MethodPost, "/authors", authorBody(code, first, last), nil).expect(t, http.StatusCreated, &a)
	if want := (authorView{code, first, last, 1}); a != want {
		t.Fatalf("created %+v, want %+v", a, want)
	}
	if loc := r.Header.Get("Location"); loc != "/authors/"+code {
		t.Fatalf("Location %q, want /authors/%s", loc, code)
	}
	if et := r.Header.Get("ETag"); et != `"1"` {
		t.Fatalf(`ETag %s, want "1"`, et)
	}
	return a
}

// getAuthor returns the author with code, or fails unless it answers status.
func (i *instance) getAuthor(t testing.TB, code string, status int) authorView {
	t.Helper()
	var a authorView
	r := i.get("/authors/" + code)
	if status != http.StatusOK {
		r.expectProblem(t, status, "")
		return a
	}
	r.expect(t, http.StatusOK, &a)
	if et, want := r.Header.Get("ETag"), fmt.Sprintf(`"%d"`, a.Version); et != want {
		t.Fatalf("GET %s: ETag %s, want %s", code, et, want)
	}
	return a
}

func (i *instance) listAuthors(t testing.TB, query string) authorPage {
	t.Helper()
	var p authorPage
	i.get("/authors"+query).expect(t, http.StatusOK, &p)
	return p
}

func TestAuthorsHappyPath(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()

	// Operations.
	var st map[string]string
	inst.get("/healthz").expect(t, http.StatusOK, &st)
	inst.get("/readyz").expect(t, http.StatusOK, &st)
	if st["status"] != "ready" {
		t.Fatalf("readyz: %v", st)
	}
	if !inst.Svc.Ready() {
		t.Fatal("Ready() is false after /readyz answered 200")
	}

	// Empty list.
	if p := inst.listAuthors(t, ""); len(p.Items) != 0 || p.Next != "" {
		t.Fatalf("empty list: %+v", p)
	}

	inst.createAuthor(t, "jane-austen", "Jane", "Austen")
	if a := inst.getAuthor(t, "jane-austen", http.StatusOK); a != (authorView{"jane-austen", "Jane", "Austen", 1}) {
		t.Fatalf("GET: %+v", a)
	}

	// Update.
	var a authorView
	r := inst.do(http.MethodPut, "/authors/jane-austen", map[string]string{"firstName": "J.", "lastName": "Austen"}, nil).expect(t, http.StatusOK, &a)
	if a != (authorView{"jane-austen", "J.", "Austen", 2}) || r.Header.Get("ETag") != `"2"` {
		t.Fatalf("PUT: %+v ETag %s", a, r.Header.Get("ETag"))
	}
	// With a matching If-Match, and the (same) code in the body.
	inst.do(http.MethodPut, "/authors/jane-austen", authorBody("jane-austen", "Jane", "Austen"), hdr("If-Match", `"2"`)).expect(t, http.StatusOK, &a)
	if a.Version != 3 || a.FirstName != "Jane" {
		t.Fatalf("PUT If-Match: %+v", a)
	}
	if got := inst.getAuthor(t, "jane-austen", http.StatusOK); got != a {
		t.Fatalf("GET after PUT: %+v, want %+v", got, a)
	}

	// A charset parameter is fine.
	inst.do(http.MethodPost, "/authors", authorBody("leo-tolstoy", "Leo", "Tolstoy"), hdr("Content-Type", "application/json; charset=utf-8")).expect(t, http.StatusCreated, nil)

	// List: ordered by code, paged.
	for _, c := range []string{"emily-bronte", "anne-bronte", "virginia-woolf"} {
		name := strings.Split(c, "-")
		inst.createAuthor(t, c, name[0], name[1])
	}
	want := []string{"anne-bronte", "emily-bronte", "jane-austen", "leo-tolstoy", "virginia-woolf"}
	all := inst.listAuthors(t, "")
	if codes := authorCodes(all.Items); !slices.Equal(codes, want) || all.Next != "" {
		t.Fatalf("list: %v next %q, want %v and no next", codes, all.Next, want)
	}
	var paged []string
	query := "?limit=2"
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatalf("too many pages: %v", paged)
		}
		p := inst.listAuthors(t, query)
		paged = append(paged, authorCodes(p.Items)...)
		if len(p.Items) > 2 {
			t.Fatalf("page of %d items with limit=2", len(p.Items))
		}
		if p.Next == "" {
			if pages != 2 || len(p.Items) != 1 {
				t.Fatalf("last page is page %d with %d items, want page 2 with 1", pages, len(p.Items))
			}
			break
		}
		query = "?limit=2&after=" + url.QueryEscape(p.Next)
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("paged: %v, want %v", paged, want)
	}
	if p := inst.listAuthors(t, "?limit=1000"); len(p.Items) != 5 {
		t.Fatalf("limit=1000: %d items", len(p.Items))
	}

	// Delete.
	inst.do(http.MethodDelete, "/authors/jane-austen", nil, nil).expect(t, http.StatusNoContent, nil)
	inst.getAuthor(t, "jane-austen", http.StatusNotFound)
	inst.do(http.MethodDelete, "/authors/jane-austen", nil, nil).expectProblem(t, http.StatusNotFound, "")
	inst.do(http.MethodPut, "/authors/jane-austen", map[string]string{"firstName": "J", "lastName": "A"}, nil).expectProblem(t, http.StatusNotFound, "")
	if codes := authorCodes(inst.listAuthors(t, "").Items); slices.Contains(codes, "jane-austen") {
		t.Fatalf("deleted author listed: %v", codes)
	}
	// A deleted code may be created again, from version 1.
	inst.createAuthor(t, "jane-austen", "Jane", "Austen")

	// With If-Match, a delete of the right version succeeds.
	inst.do(http.MethodDelete, "/authors/leo-tolstoy", nil, hdr("If-Match", `"1"`)).expect(t, http.StatusNoContent, nil)

	if got, want := h.events("authors", "jane-austen"), []string{"AuthorCreated", "AuthorUpdated", "AuthorUpdated", "AuthorDeleted", "AuthorCreated"}; !slices.Equal(got, want) {
		t.Fatalf("events of jane-austen: %v, want %v", got, want)
	}
}

func authorCodes(items []authorView) []string {
	codes := make([]string, len(items))
	for i, a := range items {
		codes[i] = a.Code
	}
	return codes
}

// TestAuthorsBadInput sends every kind of bad input the HTTP API refuses and checks
// that each gets its 4xx problem and writes nothing.
func TestAuthorsBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()
	inst.createAuthor(t, "jane-austen", "Jane", "Austen")
	jane := authorView{"jane-austen", "Jane", "Austen", 1}

	long := strings.Repeat("a", httpapi.MaxBodyBytes)
	valid := `{"code":"new-author","firstName":"New","lastName":"Author"}`
	type tc struct {
		name    string
		method  string
		path    string
		body    any
		headers http.Header
		status  int
		field   string
		// code is an author whose absence is checked afterwards.
		absent string
	}
	cases := []tc{
		// Body syntax.
		{name: "malformed JSON", method: "POST", path: "/authors", body: `{"code":"new-author",`, status: 400, absent: "new-author"},
		{name: "unquoted member", method: "POST", path: "/authors", body: `{code:"new-author"}`, status: 400, absent: "new-author"},
		{name: "unknown field", method: "POST", path: "/authors", body: `{"code":"new-author","firstName":"New","lastName":"Author","age":3}`, status: 400, field: "age", absent: "new-author"},
		{name: "empty body", method: "POST", path: "/authors", body: "", status: 400},
		{name: "whitespace body", method: "POST", path: "/authors", body: " \n", status: 400},
		{name: "trailing garbage", method: "POST", path: "/authors", body: valid + " x", status: 400, absent: "new-author"},
		{name: "trailing brace", method: "POST", path: "/authors", body: valid + "}", status: 400, absent: "new-author"},
		{name: "two objects", method: "POST", path: "/authors", body: valid + valid, status: 400, absent: "new-author"},
		{name: "array body", method: "POST", path: "/authors", body: `[` + valid + `]`, status: 400, absent: "new-author"},
		{name: "string body", method: "POST", path: "/authors", body: `"new-author"`, status: 400, absent: "new-author"},
		{name: "body over 1 MiB", method: "POST", path: "/authors", body: `{"code":"new-author","firstName":"` + long + `","lastName":"Author"}`, status: 413, absent: "new-author"},
		{name: "body over 1 MiB of whitespace", method: "POST", path: "/authors", body: valid + strings.Repeat(" ", httpapi.MaxBodyBytes), status: 413, absent: "new-author"},
		// Content type.
		{name: "text/plain", method: "POST", path: "/authors", body: valid, headers: hdr("Content-Type", "text/plain"), status: 415, absent: "new-author"},
		{name: "no content type", method: "POST", path: "/authors", body: valid, headers: hdr("Content-Type", ""), status: 415, absent: "new-author"},
		{name: "malformed content type", method: "POST", path: "/authors", body: valid, headers: hdr("Content-Type", "application/json; ="), status: 415, absent: "new-author"},
		{name: "form content type", method: "PUT", path: "/authors/jane-austen", body: `{"firstName":"X","lastName":"Y"}`, headers: hdr("Content-Type", "application/x-www-form-urlencoded"), status: 415},
		// Fields.
		{name: "missing lastName", method: "POST", path: "/authors", body: `{"code":"new-author","firstName":"New"}`, status: 422, field: "lastName", absent: "new-author"},
		{name: "missing code", method: "POST", path: "/authors", body: `{"firstName":"New","lastName":"Author"}`, status: 422, field: "code"},
		{name: "null body", method: "POST", path: "/authors", body: `null`, status: 422, field: "code"},
		{name: "null field", method: "POST", path: "/authors", body: `{"code":"new-author","firstName":null,"lastName":"Author"}`, status: 422, field: "firstName", absent: "new-author"},
		{name: "blank firstName", method: "POST", path: "/authors", body: authorBody("new-author", "  ", "Author"), status: 422, field: "firstName", absent: "new-author"},
		{name: "blank lastName", method: "POST", path: "/authors", body: authorBody("new-author", "New", ""), status: 422, field: "lastName", absent: "new-author"},
		{name: "name too long", method: "POST", path: "/authors", body: authorBody("new-author", strings.Repeat("n", 201), "Author"), status: 422, field: "firstName", absent: "new-author"},
		{name: "names just under 1 MiB", method: "POST", path: "/authors", body: authorBody("new-author", strings.Repeat("n", httpapi.MaxBodyBytes/2-100), strings.Repeat("n", httpapi.MaxBodyBytes/2-100)), status: 422, field: "firstName", absent: "new-author"},
		{name: "invalid code", method: "POST", path: "/authors", body: authorBody("Jane Austen", "Jane", "Austen"), status: 422, field: "code"},
		{name: "code with upper case", method: "POST", path: "/authors", body: authorBody("Jane-Austen", "Jane", "Austen"), status: 422, field: "code"},
		{name: "empty code", method: "POST", path: "/authors", body: authorBody("", "Jane", "Austen"), status: 422, field: "code"},
		{name: "code too long", method: "POST", path: "/authors", body: authorBody(strings.Repeat("a", 65), "Jane", "Austen"), status: 422, field: "code"},
		{name: "huge code", method: "POST", path: "/authors", body: authorBody(strings.Repeat("a", 700<<10), "Jane", "Austen"), status: 422, field: "code"},
		{name: "wrong type", method: "POST", path: "/authors", body: `{"code":"new-author","firstName":5,"lastName":"Author"}`, status: 422, field: "firstName", absent: "new-author"},
		{name: "object for string", method: "POST", path: "/authors", body: `{"code":{"a":1},"firstName":"New","lastName":"Author"}`, status: 422, field: "code"},
		{name: "duplicate create", method: "POST", path: "/authors", body: authorBody("jane-austen", "Other", "Name"), status: 409},
		{name: "PUT code differs", method: "PUT", path: "/authors/jane-austen", body: authorBody("other-code", "X", "Y"), status: 422, field: "code", absent: "other-code"},
		{name: "PUT missing firstName", method: "PUT", path: "/authors/jane-austen", body: `{"lastName":"Y"}`, status: 422, field: "firstName"},
		{name: "PUT blank lastName", method: "PUT", path: "/authors/jane-austen", body: `{"firstName":"X","lastName":" "}`, status: 422, field: "lastName"},
		{name: "PUT wrong type", method: "PUT", path: "/authors/jane-austen", body: `{"firstName":["X"],"lastName":"Y"}`, status: 422, field: "firstName"},
		{name: "PUT unknown field", method: "PUT", path: "/authors/jane-austen", body: `{"firstName":"X","lastName":"Y","version":7}`, status: 400, field: "version"},
		{name: "PUT empty body", method: "PUT", path: "/authors/jane-austen", body: "", status: 400},
		{name: "PUT missing author", method: "PUT", path: "/authors/nobody", body: `{"firstName":"X","lastName":"Y"}`, status: 404, absent: "nobody"},
		{name: "DELETE missing author", method: "DELETE", path: "/authors/nobody", status: 404, absent: "nobody"},
		// Paths.
		{name: "GET malformed code", method: "GET", path: "/authors/Jane_Austen", status: 400, field: "code"},
		{name: "PUT malformed code", method: "PUT", path: "/authors/Jane_Austen", body: `{"firstName":"X","lastName":"Y"}`, status: 400, field: "code"},
		{name: "DELETE malformed code", method: "DELETE", path: "/authors/-x-", status: 400, field: "code"},
		{name: "GET escaped malformed code", method: "GET", path: "/authors/a%20b", status: 400, field: "code"},
		{name: "unknown route", method: "GET", path: "/nothing-here", status: 404},
		{name: "unknown subresource", method: "GET", path: "/authors/jane-austen/nothing", status: 404},
		{name: "unknown route POST", method: "POST", path: "/authorz", body: valid, status: 404},
		// Preconditions.
		{name: "If-Match mismatch PUT", method: "PUT", path: "/authors/jane-austen", body: `{"firstName":"X","lastName":"Y"}`, headers: hdr("If-Match", `"7"`), status: 412},
		{name: "If-Match mismatch DELETE", method: "DELETE", path: "/authors/jane-austen", headers: hdr("If-Match", `"0"`), status: 412},
		{name: "If-Match on a create that exists", method: "POST", path: "/authors", body: authorBody("jane-austen", "X", "Y"), headers: hdr("If-Match", `"0"`), status: 412},
		{name: "malformed If-Match", method: "PUT", path: "/authors/jane-austen", body: `{"firstName":"X","lastName":"Y"}`, headers: hdr("If-Match", `"abc"`), status: 400},
		{name: "negative If-Match", method: "DELETE", path: "/authors/jane-austen", headers: hdr("If-Match", `"-1"`), status: 400},
		{name: "Idempotency-Key too long", method: "POST", path: "/authors", body: valid, headers: hdr("Idempotency-Key", strings.Repeat("k", 256)), status: 400, absent: "new-author"},
		// Lists.
		{name: "limit=0", method: "GET", path: "/authors?limit=0", status: 400, field: "limit"},
		{name: "limit=5000", method: "GET", path: "/authors?limit=5000", status: 400, field: "limit"},
		{name: "limit=x", method: "GET", path: "/authors?limit=x", status: 400, field: "limit"},
		{name: "limit=-1", method: "GET", path: "/authors?limit=-1", status: 400, field: "limit"},
		{name: "limit overflow", method: "GET", path: "/authors?limit=99999999999999999999", status: 400, field: "limit"},
		{name: "bad cursor", method: "GET", path: "/authors?after=" + url.QueryEscape("!!!"), status: 400, field: "after"},
		{name: "padded cursor", method: "GET", path: "/authors?after=YQ==", status: 400, field: "after"},
		// CQRS endpoints.
		{name: "command without type", method: "POST", path: "/authors/commands", body: `{"code":"new-author"}`, status: 422, field: "type", absent: "new-author"},
		{name: "command of unknown type", method: "POST", path: "/authors/commands", body: `{"type":"EraseAuthor","code":"jane-austen"}`, status: 422, field: "type"},
		{name: "command type not a string", method: "POST", path: "/authors/commands", body: `{"type":1,"code":"jane-austen"}`, status: 422, field: "type"},
		{name: "command with unknown field", method: "POST", path: "/authors/commands", body: `{"type":"CreateAuthor","code":"new-author","firstName":"N","lastName":"A","x":1}`, status: 400, field: "x", absent: "new-author"},
		{name: "command with wrong type", method: "POST", path: "/authors/commands", body: `{"type":"CreateAuthor","code":"new-author","firstName":1,"lastName":"A"}`, status: 422, field: "firstName", absent: "new-author"},
		{name: "command with invalid code", method: "POST", path: "/authors/commands", body: `{"type":"DeleteAuthor","code":"Jane Austen"}`, status: 422, field: "code"},
		{name: "command as array", method: "POST", path: "/authors/commands", body: `[]`, status: 400},
		{name: "command wrong content type", method: "POST", path: "/authors/commands", body: `{"type":"DeleteAuthor","code":"jane-austen"}`, headers: hdr("Content-Type", "text/json"), status: 415},
		{name: "command bad wait", method: "GET", path: "/authors/commands/abc?wait=forever", status: 400, field: "wait"},
		{name: "command wait too long", method: "GET", path: "/authors/commands/abc?wait=2h", status: 400, field: "wait"},
		{name: "command msgId too long", method: "GET", path: "/authors/commands/" + strings.Repeat("a", 200), status: 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := inst.do(c.method, c.path, c.body, c.headers)
			if r.Status >= 500 {
				t.Fatalf("server error: %s", r)
			}
			p := r.expectProblem(t, c.status, c.field)
			if r.Header.Get("ETag") != "" || r.Header.Get("Location") != "" {
				t.Fatalf("%s: a problem with ETag or Location: %v", r, r.Header)
			}
			_ = p
			if c.absent != "" {
				inst.getAuthor(t, c.absent, http.StatusNotFound)
			}
			if got := inst.getAuthor(t, "jane-austen", http.StatusOK); got != jane {
				t.Fatalf("jane-austen changed to %+v", got)
			}
		})
	}

	t.Run("wrong method", func(t *testing.T) {
		for _, c := range []struct{ method, path, allow string }{
			{"PATCH", "/authors/jane-austen", "GET, PUT, DELETE"},
			{"DELETE", "/authors", "GET, POST"},
			{"PUT", "/authors", "GET, POST"},
			{"POST", "/healthz", "GET"},
			{"POST", "/authors/jane-austen", "GET, PUT, DELETE"},
		} {
			r := inst.do(c.method, c.path, nil, nil)
			r.expectProblem(t, http.StatusMethodNotAllowed, "")
			if got := strings.Split(r.Header.Get("Allow"), ", "); !sameSet(got, strings.Split(c.allow, ", ")) {
				t.Errorf("%s: Allow %q, want %q", r, r.Header.Get("Allow"), c.allow)
			}
		}
		if got := inst.getAuthor(t, "jane-austen", http.StatusOK); got != jane {
			t.Fatalf("jane-austen changed to %+v", got)
		}
	})

	// Nothing was written: the list and the events are as before.
	if codes := authorCodes(inst.listAuthors(t, "").Items); !slices.Equal(codes, []string{"jane-austen"}) {
		t.Fatalf("authors after bad input: %v", codes)
	}
	events := h.readCommitted("" + h.Service + ".authors.events")
	if len(events) != 1 || string(events[0].Key) != "jane-austen" {
		var keys []string
		for _, e := range events {
			keys = append(keys, string(e.Key))
		}
		t.Fatalf("events after bad input: %d (%v), want only jane-austen's AuthorCreated", len(events), keys)
	}
	if changelog := h.readCommitted(h.Service + ".authors.changelog"); len(changelog) != 1 {
		t.Fatalf("changelog records after bad input: %d, want 1", len(changelog))
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestAuthorsIdempotencyKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()

	key := hdr("Idempotency-Key", "create-jane-1")
	var first, second authorView
	r1 := inst.do(http.MethodPost, "/authors", authorBody("jane-austen", "Jane", "Austen"), key).expect(t, http.StatusCreated, &first)
	// Meanwhile the author changes; the retry still answers the first outcome.
	r2 := inst.do(http.MethodPost, "/authors", authorBody("jane-austen", "Jane", "Austen"), key).expect(t, http.StatusCreated, &second)
	if first != second || first.Version != 1 || r1.Header.Get("ETag") != r2.Header.Get("ETag") || r2.Header.Get("Location") != "/authors/jane-austen" {
		t.Fatalf("retry answered %+v (%v), first %+v (%v)", second, r2.Header, first, r1.Header)
	}
	// A different key is a different command: the author exists.
	inst.do(http.MethodPost, "/authors", authorBody("jane-austen", "Jane", "Austen"), hdr("Idempotency-Key", "create-jane-2")).expectProblem(t, http.StatusConflict, "")
	// So is a command without a key.
	inst.do(http.MethodPost, "/authors", authorBody("jane-austen", "Jane", "Austen"), nil).expectProblem(t, http.StatusConflict, "")

	// The same key through the CQRS endpoint is the same command, too.
	var accepted struct {
		MsgID string `json:"msgId"`
	}
	inst.do(http.MethodPost, "/authors/commands", `{"type":"CreateAuthor","code":"jane-austen","firstName":"Jane","lastName":"Austen"}`, key).expect(t, http.StatusAccepted, &accepted)
	var out outcomeView
	inst.get("/authors/commands/"+accepted.MsgID+"?wait=5s").expect(t, http.StatusOK, &out)
	if out.Status != "accepted" || out.Version != 1 {
		t.Fatalf("CQRS retry outcome: %+v", out)
	}

	// A later write on the same key is processed after the retries
	// (commands of one key are ordered), so once it is done the retries
	// have been seen by the processor as well.
	inst.do(http.MethodPut, "/authors/jane-austen", map[string]string{"firstName": "J.", "lastName": "Austen"}, nil).expect(t, http.StatusOK, nil)
	if got, want := h.events("authors", "jane-austen"), []string{"AuthorCreated", "AuthorUpdated"}; !slices.Equal(got, want) {
		t.Fatalf("events: %v, want %v", got, want)
	}

	// A retried delete answers 204 twice and deletes once.
	del := hdr("Idempotency-Key", "delete-jane-1")
	inst.do(http.MethodDelete, "/authors/jane-austen", nil, del).expect(t, http.StatusNoContent, nil)
	inst.do(http.MethodDelete, "/authors/jane-austen", nil, del).expect(t, http.StatusNoContent, nil)
	inst.getAuthor(t, "jane-austen", http.StatusNotFound)
	// Without the key, a second delete is a 404.
	inst.do(http.MethodDelete, "/authors/jane-austen", nil, nil).expectProblem(t, http.StatusNotFound, "")

	// A key reused for another kind of write is not answered with the
	// first write's outcome: the create's key on a delete deletes.
	inst.createAuthor(t, "leo-tolstoy", "Leo", "Tolstoy")
	reused := hdr("Idempotency-Key", "leo-1")
	inst.do(http.MethodPut, "/authors/leo-tolstoy", map[string]string{"firstName": "Lev", "lastName": "Tolstoy"}, reused).expect(t, http.StatusOK, nil)
	inst.do(http.MethodDelete, "/authors/leo-tolstoy", nil, reused).expect(t, http.StatusNoContent, nil)
	inst.getAuthor(t, "leo-tolstoy", http.StatusNotFound)

	// The retried rejection is the first rejection, too.
	rk := hdr("Idempotency-Key", "update-nobody")
	inst.do(http.MethodPut, "/authors/nobody", map[string]string{"firstName": "X", "lastName": "Y"}, rk).expectProblem(t, http.StatusNotFound, "")
	inst.do(http.MethodPut, "/authors/nobody", map[string]string{"firstName": "X", "lastName": "Y"}, rk).expectProblem(t, http.StatusNotFound, "")

	if got, want := h.events("authors", "jane-austen"), []string{"AuthorCreated", "AuthorUpdated", "AuthorDeleted"}; !slices.Equal(got, want) {
		t.Fatalf("events: %v, want %v", got, want)
	}

	// The idempotency table survives a restart without stores: a retry of
	// the first create still answers its first outcome and creates nothing.
	inst.stop()
	inst = h.startWithoutStores()
	inst.do(http.MethodPost, "/authors", authorBody("jane-austen", "Jane", "Austen"), key).expect(t, http.StatusCreated, &second)
	if second != first {
		t.Fatalf("retry after restart answered %+v, want %+v", second, first)
	}
	inst.do(http.MethodPost, "/authors", authorBody("anne-bronte", "Anne", "Bronte"), nil).expect(t, http.StatusCreated, nil)
	inst.do(http.MethodPut, "/authors/jane-austen", map[string]string{"firstName": "J.", "lastName": "Austen"}, nil).expectProblem(t, http.StatusNotFound, "")
	if got, want := h.events("authors", "jane-austen"), []string{"AuthorCreated", "AuthorUpdated", "AuthorDeleted"}; !slices.Equal(got, want) {
		t.Fatalf("events after restart: %v, want %v", got, want)
	}
}

type outcomeView struct {
	MsgID   string            `json:"msgId"`
	Status  string            `json:"status"`
	Version int64             `json:"version"`
	Events  []json.RawMessage `json:"events"`
	Error   *struct {
		Code    string `json:"code"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestAuthorsCommandsEndpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()

	post := func(body string) (string, string) {
		t.Helper()
		var acc map[string]string
		r := inst.do(http.MethodPost, "/authors/commands", body, nil).expect(t, http.StatusAccepted, &acc)
		if acc["msgId"] == "" || len(acc) != 1 {
			t.Fatalf("202 body %v", acc)
		}
		if loc := r.Header.Get("Location"); loc != "/authors/commands/"+acc["msgId"] {
			t.Fatalf("Location %q for msgId %s", loc, acc["msgId"])
		}
		return acc["msgId"], r.Header.Get("Location")
	}

	id, loc := post(`{"type":"CreateAuthor","code":"jane-austen","firstName":"Jane","lastName":"Austen"}`)
	var out outcomeView
	inst.get(loc+"?wait=5s").expect(t, http.StatusOK, &out)
	if out.MsgID != id || out.Status != "accepted" || out.Version != 1 || out.Error != nil || len(out.Events) != 1 {
		t.Fatalf("outcome: %+v", out)
	}
	var ev map[string]any
	if err := json.Unmarshal(out.Events[0], &ev); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"type": "AuthorCreated", "code": "jane-austen", "firstName": "Jane", "lastName": "Austen"}; fmt.Sprint(ev) != fmt.Sprint(want) {
		t.Fatalf("event %v, want %v", ev, want)
	}
	// Once known, the outcome is answered without waiting, too.
	var again outcomeView
	inst.get(loc).expect(t, http.StatusOK, &again)
	if again.MsgID != id || again.Status != "accepted" {
		t.Fatalf("outcome again: %+v", again)
	}
	inst.getAuthor(t, "jane-austen", http.StatusOK)

	// A rejected command.
	id2, loc2 := post(`{"type":"CreateAuthor","code":"jane-austen","firstName":"Jane","lastName":"Austen"}`)
	var rej outcomeView
	inst.get(loc2+"?wait=5s").expect(t, http.StatusOK, &rej)
	if rej.MsgID != id2 || rej.Status != "rejected" || rej.Error == nil || rej.Error.Code != "already_exists" || rej.Error.Message == "" || len(rej.Events) != 0 || rej.Version != 1 {
		t.Fatalf("rejected outcome: %+v (error %+v)", rej, rej.Error)
	}
	// An invalid one names its field.
	_, loc3 := post(`{"type":"UpdateAuthor","code":"jane-austen","firstName":" ","lastName":"Austen"}`)
	inst.get(loc3+"?wait=5s").expect(t, http.StatusOK, &rej)
	if rej.Status != "rejected" || rej.Error == nil || rej.Error.Code != "invalid" || rej.Error.Field != "firstName" {
		t.Fatalf("invalid outcome: %+v (error %+v)", rej, rej.Error)
	}
	// Update and delete through commands.
	_, loc4 := post(`{"type":"UpdateAuthor","code":"jane-austen","firstName":"J.","lastName":"Austen"}`)
	inst.get(loc4+"?wait=5s").expect(t, http.StatusOK, &out)
	if out.Status != "accepted" || out.Version != 2 {
		t.Fatalf("update outcome: %+v", out)
	}
	_, loc5 := post(`{"type":"DeleteAuthor","code":"jane-austen"}`)
	inst.get(loc5+"?wait=5s").expect(t, http.StatusOK, &out)
	if out.Status != "accepted" || len(out.Events) != 1 || !strings.Contains(string(out.Events[0]), `"type":"AuthorDeleted"`) {
		t.Fatalf("delete outcome: %+v", out)
	}
	inst.getAuthor(t, "jane-austen", http.StatusNotFound)

	// Unknown command type.
	inst.do(http.MethodPost, "/authors/commands", `{"type":"RenameAuthor","code":"jane-austen"}`, nil).expectProblem(t, http.StatusUnprocessableEntity, "type")
	// Unknown msgId: 404, also after waiting a little.
	inst.get("/authors/commands/00000000-0000-4000-8000-000000000000").expectProblem(t, http.StatusNotFound, "")
	inst.get("/authors/commands/00000000-0000-4000-8000-000000000000?wait=100ms").expectProblem(t, http.StatusNotFound, "")
}

func TestAuthorsSurviveRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()
	want := []authorView{}
	for _, c := range []string{"anne-bronte", "emily-bronte", "jane-austen", "leo-tolstoy"} {
		name := strings.Split(c, "-")
		want = append(want, inst.createAuthor(t, c, name[0], name[1]))
	}
	var upd authorView
	inst.do(http.MethodPut, "/authors/jane-austen", map[string]string{"firstName": "J.", "lastName": "Austen"}, nil).expect(t, http.StatusOK, &upd)
	want[2] = upd
	inst.do(http.MethodDelete, "/authors/leo-tolstoy", nil, nil).expect(t, http.StatusNoContent, nil)
	want = want[:3]

	check := func(inst *instance) {
		t.Helper()
		for _, a := range want {
			if got := inst.getAuthor(t, a.Code, http.StatusOK); got != a {
				t.Fatalf("GET %s: %+v, want %+v", a.Code, got, a)
			}
		}
		inst.getAuthor(t, "leo-tolstoy", http.StatusNotFound)
		if got := inst.listAuthors(t, "").Items; !slices.Equal(got, want) {
			t.Fatalf("list: %+v, want %+v", got, want)
		}
	}

	inst.stop()
	inst = h.start()
	check(inst)
	// It also goes on writing where it stopped.
	var v authorView
	inst.do(http.MethodPut, "/authors/jane-austen", map[string]string{"firstName": "Jane", "lastName": "Austen"}, hdr("If-Match", `"2"`)).expect(t, http.StatusOK, &v)
	if v.Version != 3 {
		t.Fatalf("version after restart: %+v", v)
	}
	want[2] = v

	inst.stop()
	h.deleteStores(h.DataDir)
	inst = h.launch(h.DataDir)
	// Alive at once; ready once restored (it may be ready already).
	inst.get("/healthz").expect(t, http.StatusOK, nil)
	if r := inst.get("/readyz"); r.Status != http.StatusOK {
		r.expectProblem(t, http.StatusServiceUnavailable, "")
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: no Retry-After", r)
		}
	}
	inst.waitReady(60 * time.Second)
	check(inst)
	inst.createAuthor(t, "leo-tolstoy", "Leo", "Tolstoy")
	inst.createAuthor(t, "virginia-woolf", "Virginia", "Woolf")
	inst.do(http.MethodPost, "/authors", authorBody("anne-bronte", "A", "B"), nil).expectProblem(t, http.StatusConflict, "")
}

func TestAuthorsWriteSurvivesAbortedTransactions(t *testing.T) {
	t.Parallel()
	// Once armed, the next two transactions of any stage fail between
	// produce and commit; nothing else runs while the create is the only
	// work, so they are the create's.
	var armed atomic.Bool
	var calls atomic.Int32
	h := newHarness(t, func(h *harness) {
		h.BeforeCommit = func(context.Context) error {
			if !armed.Load() {
				return nil
			}
			if n := calls.Add(1); n <= 2 {
				return fmt.Errorf("injected failure %d", n)
			}
			return nil
		}
	})
	inst := h.start()
	armed.Store(true)
	inst.createAuthor(t, "jane-austen", "Jane", "Austen")
	if n := calls.Load(); n < 3 {
		t.Fatalf("BeforeCommit called %d times, want at least 3 (2 aborts, then the commit)", n)
	}
	if got := h.events("authors", "jane-austen"); !slices.Equal(got, []string{"AuthorCreated"}) {
		t.Fatalf("events: %v, want one AuthorCreated", got)
	}
	if n := len(h.readCommitted(h.Service + ".authors.results")); n != 1 {
		t.Fatalf("committed outcomes: %d, want 1", n)
	}
	// The aborted attempts did produce their records (the failure came
	// between produce and commit); only read_committed hides them.
	if n := len(h.readUncommitted(h.Service + ".authors.events")); n != 3 {
		t.Fatalf("events produced, aborted ones included: %d, want 3", n)
	}
	inst.getAuthor(t, "jane-austen", http.StatusOK)
	// Writes go on as usual.
	inst.do(http.MethodPut, "/authors/jane-austen", map[string]string{"firstName": "J.", "lastName": "Austen"}, nil).expect(t, http.StatusOK, nil)
	if got := h.events("authors", "jane-austen"); !slices.Equal(got, []string{"AuthorCreated", "AuthorUpdated"}) {
		t.Fatalf("events: %v", got)
	}
}
