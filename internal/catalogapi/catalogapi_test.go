package catalogapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bookscatalog/catalog/codec/jsoncodec"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/httpapi"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/domain/booksbyauthor"
)

// fakeWriter runs commands through the aggregate's decide on the zero
// state, with no Kafka, and remembers their outcomes.
type fakeWriter[S, C, E any] struct {
	agg es.Aggregate[S, C, E]
	mu  sync.Mutex
	out map[string]*eskafka.Result[S, E]
}

func (w *fakeWriter[S, C, E]) Send(_ context.Context, cmd C, opt eskafka.SendOptions) (eskafka.Sent, error) {
	var zero S
	next, events, rej := w.agg.Handle(zero, cmd, opt.ExpectedVersion)
	res := &eskafka.Result[S, E]{Outcome: &eskafka.Outcome{MsgID: opt.MsgID, Key: w.agg.Key(cmd), Version: w.agg.Version(next)}}
	if rej != nil {
		res.Status, res.Rejection = eskafka.StatusRejected, rej
	} else {
		res.Status, res.State, res.Exists, res.Events = eskafka.StatusAccepted, next, w.agg.Exists(next), events
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out[opt.MsgID] = res
	return eskafka.Sent{MsgID: opt.MsgID}, nil
}

func (w *fakeWriter[S, C, E]) Await(_ context.Context, sent eskafka.Sent) (*eskafka.Result[S, E], error) {
	res, ok, _ := w.Lookup(sent.MsgID)
	if !ok {
		return nil, context.DeadlineExceeded
	}
	return res, nil
}

func (w *fakeWriter[S, C, E]) Lookup(msgID string) (*eskafka.Result[S, E], bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	res, ok := w.out[msgID]
	return res, ok, nil
}

// emptyReader has no aggregates.
type emptyReader[S any] struct{}

func (emptyReader[S]) Get(string) (S, error) {
	var zero S
	return zero, eskafka.ErrNotFound
}

func (emptyReader[S]) List(string, int) ([]S, []string, bool, error) { return nil, nil, false, nil }

type readyHealth struct{}

func (readyHealth) Readiness() error { return nil }

// catalogAPI is the catalog's API over fakes: commands are decided against
// empty states, reads find nothing, and authors whose code starts with
// "a" exist.
func catalogAPI() http.Handler {
	authors := es.Aggregate[author.State, author.Command, author.Event]{
		Name: "authors", Decide: author.Decide, Evolve: author.Evolve, Key: author.Command.AuthorCode,
		Version: author.Version, Exists: author.State.Exists,
	}
	books := es.Aggregate[book.State, book.Command, book.Event]{
		Name: "books", Decide: book.Decide, Evolve: book.Evolve, Key: book.Command.BookID,
		Version: book.Version, Exists: book.State.Exists,
	}
	cfg := httpapi.Config{Health: readyHealth{}, WriteTimeout: time.Second}
	cfg.Handle(&Authors{
		Aggregate: authors, Singular: "author", KeyName: "code", ValidKey: ValidAuthorCode,
		Writer:   &fakeWriter[author.State, author.Command, author.Event]{agg: authors, out: map[string]*eskafka.Result[author.State, author.Event]{}},
		Reader:   emptyReader[author.State]{},
		Commands: jsoncodec.NewUnion(author.Commands()...),
		Events:   jsoncodec.NewUnion(author.Events()...),
		Render:   RenderAuthor, Writes: AuthorWrites(),
		Reads: map[string]httpapi.Read{"books": BooksOfAuthorRead(func(code string) (booksbyauthor.View, error) {
			if code == "austen" {
				return booksbyauthor.View{Author: &booksbyauthor.Author{Code: code}}, nil
			}
			return booksbyauthor.View{}, eskafka.ErrNotFound
		}, nil)},
	})
	cfg.Handle(&Books{
		Aggregate: books, Singular: "book", KeyName: "id", ValidKey: ValidBookID,
		Writer:   &fakeWriter[book.State, book.Command, book.Event]{agg: books, out: map[string]*eskafka.Result[book.State, book.Event]{}},
		Reader:   emptyReader[book.State]{},
		Commands: jsoncodec.NewUnion(book.Commands()...),
		Events:   jsoncodec.NewUnion(book.Events()...),
		Render:   RenderBook, Writes: BookWrites(),
		Precheck: CheckBookAuthor(func(_ context.Context, code string) (httpapi.Found, error) {
			return httpapi.Found{Exists: strings.HasPrefix(code, "a"), Position: checkedPosition}, nil
		}),
	})
	return httpapi.New(cfg)
}

const uuid = "0b8a6c2e-5d0f-4a4e-9b7e-3f2c1d0e9a8b"

// checkedPosition is the position in its history at which the fake
// precheck sees every author.
const checkedPosition = 42

// A book is given an author with the position at which the precheck saw
// the author, whatever position the writer sent (the reaction to the
// author's deletion relies on it), and a command without an author keeps
// none.
func TestBookAuthorPositionIsTheChecked(t *testing.T) {
	api := catalogAPI()
	for _, c := range []struct {
		name, body string
		want       int64
	}{
		{"create with an author", `{"type":"CreateBook","id":"` + uuid + `","title":"Emma","authorCode":"austen"}`, checkedPosition},
		{"create with a position of the writer's", `{"type":"CreateBook","id":"` + uuid + `","title":"Emma","authorCode":"austen","authorPosition":999999}`, checkedPosition},
		{"create without author", `{"type":"CreateBook","id":"` + uuid + `","title":"Emma"}`, -1},
	} {
		r := httptest.NewRequest("POST", "/books/commands", strings.NewReader(c.body))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("%s: status %d: %s", c.name, rec.Code, rec.Body.Bytes())
		}
		r = httptest.NewRequest("GET", rec.Header().Get("Location"), nil)
		rec = httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		var out struct {
			Events []struct {
				Type           string `json:"type"`
				AuthorPosition *int64 `json:"authorPosition"`
			} `json:"events"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: outcome %s: %v", c.name, rec.Body.Bytes(), err)
		}
		got := int64(-1)
		for _, e := range out.Events {
			if e.Type == "BookAuthorSet" && e.AuthorPosition != nil {
				got = *e.AuthorPosition
			}
		}
		if got != c.want {
			t.Errorf("%s: BookAuthorSet's authorPosition %d (-1: none), want %d; outcome %s", c.name, got, c.want, rec.Body.Bytes())
		}
	}
}

// TestWrites sends the catalog's writes, good and bad, over fakes: the
// statuses, headers and problems are the service's contract.
func TestWrites(t *testing.T) {
	api := catalogAPI()
	for _, c := range []struct {
		name, method, path, body, idem string
		status                         int
		field                          string
		header, value                  string
	}{
		{"create author", "POST", "/authors", `{"code":"ja","firstName":"J","lastName":"A"}`, "", 201, "", "Location", "/authors/ja"},
		{"create author: ETag", "POST", "/authors", `{"code":"ja","firstName":"J","lastName":"A"}`, "", 201, "", "ETag", `"1"`},
		{"author member missing", "POST", "/authors", `{"code":"ja","firstName":"J"}`, "", 422, "lastName", "", ""},
		{"member in capitals", "POST", "/authors", `{"CODE":"ja","firstName":"J","lastName":"A"}`, "", 400, "CODE", "", ""},
		{"second spelling of a member", "POST", "/authors", `{"code":"ja","firstName":"J","lastName":"A","lastname":"B"}`, "", 400, "lastname", "", ""},
		{"control character in a name", "POST", "/authors", `{"code":"ja","firstName":"J\u0000","lastName":"A"}`, "", 422, "firstName", "", ""},
		{"malformed code", "POST", "/authors", `{"code":"Ja","firstName":"J","lastName":"A"}`, "", 422, "code", "", ""},
		{"update member case", "PUT", "/authors/ja", `{"firstName":"J","LastName":"A"}`, "", 400, "LastName", "", ""},
		{"code in the body differs", "PUT", "/authors/ja", `{"code":"jb","firstName":"J","lastName":"A"}`, "", 422, "code", "", ""},
		{"update of nobody", "PUT", "/authors/ja", `{"firstName":"J","lastName":"A"}`, "", 404, "", "", ""},
		{"delete of nobody", "DELETE", "/authors/ja", "", "", 404, "", "", ""},
		{"malformed code in path", "DELETE", "/authors/J%20A", "", "", 400, "code", "", ""},
		{"create book", "POST", "/books", `{"id":"` + uuid + `","title":"Emma","authorCode":"austen"}`, "", 201, "", "Location", "/books/" + uuid},
		{"create book of an unknown author", "POST", "/books", `{"title":"Emma","authorCode":"bronte"}`, "", 422, "authorCode", "", ""},
		{"create book with an empty author code", "POST", "/books", `{"title":"Emma","authorCode":""}`, "", 422, "authorCode", "", ""},
		{"create book, id from the Idempotency-Key", "POST", "/books", `{"title":"Emma","authorCode":null}`, "k1", 201, "", "", ""},
		{"book member case", "POST", "/books", `{"Title":"Emma"}`, "", 400, "Title", "", ""},
		{"malformed book id", "POST", "/books", `{"id":"x","title":"Emma"}`, "", 422, "id", "", ""},
		{"bidi override in a title", "POST", "/books", `{"title":"Emma\u202e"}`, "", 422, "title", "", ""},
		{"book author member case", "PUT", "/books/" + uuid + "/author", `{"authorcode":null}`, "", 400, "authorcode", "", ""},
		{"book author missing", "PUT", "/books/" + uuid + "/author", `{}`, "", 422, "authorCode", "", ""},
		{"book author unknown", "PUT", "/books/" + uuid + "/author", `{"authorCode":"bronte"}`, "", 422, "authorCode", "", ""},
		{"book author of no book", "PUT", "/books/" + uuid + "/author", `{"authorCode":"austen"}`, "", 404, "", "", ""},
		{"chapter duplicate", "POST", "/books/" + uuid + "/chapters", `{"title":"1","content":"a","content":"b"}`, "", 400, "content", "", ""},
		{"chapter of no book", "POST", "/books/" + uuid + "/chapters", `{"title":"1","content":"a"}`, "", 404, "", "", ""},
		{"chapter number", "DELETE", "/books/" + uuid + "/chapters/x", "", "", 400, "chapterId", "", ""},
		{"book command of an unknown author", "POST", "/books/commands", `{"type":"SetBookAuthor","id":"` + uuid + `","authorCode":"bronte"}`, "", 422, "authorCode", "", ""},
		{"book command", "POST", "/books/commands", `{"type":"RemoveBook","id":"` + uuid + `"}`, "", 202, "", "", ""},
	} {
		r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		r.Header.Set("Content-Type", "application/json")
		if c.idem != "" {
			r.Header.Set("Idempotency-Key", c.idem)
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		if rec.Code != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, rec.Code, c.status, rec.Body.Bytes())
			continue
		}
		if c.header != "" && rec.Header().Get(c.header) != c.value {
			t.Errorf("%s: %s %q, want %q", c.name, c.header, rec.Header().Get(c.header), c.value)
		}
		if c.status < 400 {
			continue
		}
		var p httpapi.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Field != c.field || p.Detail == "" {
			t.Errorf("%s: problem %s (%v), want field %q", c.name, rec.Body.Bytes(), err, c.field)
		}
	}
}

// Reads answer in the catalog's words: a missing author is "author ... not
// found", and the books of an author come from the read model.
func TestReads(t *testing.T) {
	api := catalogAPI()
	for path, want := range map[string]struct {
		status int
		body   string
	}{
		"/authors/jane":              {404, `author \"jane\" not found`},
		"/books/" + uuid:             {404, `book \"` + uuid + `\" not found`},
		"/books/x":                   {400, "malformed id in path"},
		"/authors/austen/books":      {200, `{"author":{"code":"austen"`},
		"/authors/bronte/books":      {404, `author \"bronte\" not found`},
		"/authors/Bronte/books":      {400, "malformed code in path"},
		"/authors/commands/books":    {404, `author \"commands\" not found`},
		"/authors/austen/history":    {404, "no history of authors"},
		"/authors/austen/unheard-of": {404, "no resource at"},
	} {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want.status || !strings.Contains(rec.Body.String(), want.body) {
			t.Errorf("GET %s: %d %s, want %d with %s", path, rec.Code, rec.Body.String(), want.status, want.body)
		}
	}
}

// The chapter added is the answer of POST /books/{id}/chapters.
func TestAddedChapter(t *testing.T) {
	got := addedChapter(&eskafka.Result[book.State, book.Event]{Events: []book.Event{book.ChapterAdded{ID: uuid, ChapterID: 3, Title: "T", Content: "C"}}})
	if got != (ChapterView{ID: 3, Title: "T", Content: "C"}) {
		t.Fatalf("%+v", got)
	}
}

// FuzzAPI sends arbitrary requests to the catalog's API (over fakes, so
// that any 5xx is the API's own): none panics or gets a 5xx, and every
// error is a problem document with its status.
func FuzzAPI(f *testing.F) {
	for _, s := range []struct{ method, path, ct, body, ifMatch, idem string }{
		{"POST", "/authors", "application/json", `{"code":"jane-austen","firstName":"Jane","lastName":"Austen"}`, "", ""},
		{"POST", "/authors", "application/json", `{"code":"jane-austen","firstName":"Jane","lastName":"Austen"}`, `"0"`, "k1"},
		{"POST", "/authors", "application/json", `{"code":"Jane","firstName":" ","lastName":"Austen"}`, "", ""},
		{"PUT", "/authors/jane-austen", "application/json", `{"firstName":"J","lastName":"A"}`, `"1"`, ""},
		{"PUT", "/authors/jane-austen", "application/json", `{"code":"x","firstName":"J","lastName":"A"}`, `W/"x"`, ""},
		{"DELETE", "/authors/jane-austen", "", "", `*`, "k2"},
		{"GET", "/authors/jane-austen", "", "", "", ""},
		{"GET", "/authors/jane-austen/books", "", "", "", ""},
		{"GET", "/authors?limit=2&after=YQ", "", "", "", ""},
		{"POST", "/authors/commands", "application/json", `{"type":"CreateAuthor","code":"a","firstName":"b","lastName":"c"}`, "", "k"},
		{"POST", "/authors/commands", "application/json", `{"type":"DeleteAuthor"}`, "", ""},
		{"GET", "/authors/commands/" + uuid + "?wait=1ms", "", "", "", ""},
		{"POST", "/books", "application/json", `{"title":"Emma","authorCode":"austen"}`, "", ""},
		{"POST", "/books", "application/json", `{"title":"Emma","authorCode":null,"id":"` + uuid + `"}`, "", "k"},
		{"POST", "/books", "application/json", `{"title":"Emma","id":"not-a-uuid"}`, "", ""},
		{"PUT", "/books/" + uuid, "application/json", `{"title":"Emma"}`, `"3"`, ""},
		{"PUT", "/books/" + uuid + "/author", "application/json", `{"authorCode":null}`, "", ""},
		{"PUT", "/books/" + uuid + "/author", "application/json", `{"authorCode":"bronte"}`, "", ""},
		{"POST", "/books/" + uuid + "/chapters", "application/json", `{"title":"1","content":"..."}`, "", ""},
		{"DELETE", "/books/" + uuid + "/chapters/1", "", "", "", ""},
		{"DELETE", "/books/" + uuid + "/chapters/x", "", "", "", ""},
		{"DELETE", "/books/" + uuid, "", "", "", ""},
		{"GET", "/books/not-a-uuid", "", "", "", ""},
		{"POST", "/books/commands", "application/json", `{"type":"RemoveChapter","id":"` + uuid + `","chapterId":1}`, "", ""},
		{"PATCH", "/books", "", "", "", ""},
		{"GET", "/authors/../books", "", "", "", ""},
		{"POST", "/books/commands", "application/json", `{"type":"AddChapter","id":"` + uuid + `","title":"1","content":"a","content":"b"}`, "", ""},
		{"POST", "/books", "application/json", `{"title":"Emma\u202e"}`, "", ""},
	} {
		f.Add(s.method, s.path, s.ct, []byte(s.body), s.ifMatch, s.idem)
	}
	api := catalogAPI()
	f.Fuzz(func(t *testing.T, method, path, ct string, body []byte, ifMatch, idem string) {
		r, err := http.NewRequest(method, "http://catalog.test/"+strings.TrimPrefix(path, "/"), bytes.NewReader(body))
		if err != nil {
			return // not a request a server would hand to the API
		}
		set := func(k, v string) {
			if v != "" && utf8.ValidString(v) && !strings.ContainsAny(v, "\r\n\x00") {
				r.Header.Set(k, v)
			}
		}
		set("Content-Type", ct)
		set("If-Match", ifMatch)
		set("Idempotency-Key", idem)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r.WithContext(ctx))
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, r.URL, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			var p httpapi.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Detail == "" ||
				rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s %s: %d with problem %s (%v)", method, r.URL, rec.Code, rec.Body.Bytes(), err)
			}
			if rec.Code == http.StatusUnprocessableEntity && p.Field == "" {
				t.Fatalf("%s %s: 422 without a field: %s", method, r.URL, rec.Body.Bytes())
			}
		}
	})
}
