package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/httpapi"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/internal/catalogavro"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// readModelWait bounds the wait for the eventually consistent read model
// (and the reaction) to reflect a write that has returned.
const readModelWait = 20 * time.Second

type chapterView struct {
	ID      int64  `json:"id"`
	Title   string `json:"title"`
	Content string `json:"content"`
}

type bookView struct {
	ID         string        `json:"id"`
	Title      string        `json:"title"`
	AuthorCode *string       `json:"authorCode"`
	Chapters   []chapterView `json:"chapters"`
	Version    int64         `json:"version"`
}

func (b bookView) String() string {
	ac := "null"
	if b.AuthorCode != nil {
		ac = fmt.Sprintf("%q", *b.AuthorCode)
	}
	return fmt.Sprintf("{id %s title %q authorCode %s chapters %+v version %d}", b.ID, b.Title, ac, b.Chapters, b.Version)
}

type bookPage struct {
	Items []bookView `json:"items"`
	Next  string     `json:"next"`
}

// authorBooksView is the answer of GET /authors/{code}/books.
type authorBooksView struct {
	Author struct {
		Code      string `json:"code"`
		FirstName string `json:"firstName"`
		LastName  string `json:"lastName"`
	} `json:"author"`
	Books []bookRef `json:"books"`
}

type bookRef struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

func strp(s string) *string { return &s }

// booksOf is the expected answer of GET /authors/{code}/books.
func booksOf(code, first, last string, books ...bookRef) authorBooksView {
	var v authorBooksView
	v.Author.Code, v.Author.FirstName, v.Author.LastName = code, first, last
	v.Books = append([]bookRef{}, books...)
	return v
}

// checkBookMembers fails unless a book representation has exactly the
// members the HTTP API renders, with authorCode a string or null and
// chapters an array.
func checkBookMembers(t testing.TB, r *response) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	if !sameSet(keys, []string{"id", "title", "authorCode", "chapters", "version"}) {
		t.Fatalf("%s: members %v, want id, title, authorCode, chapters, version", r, keys)
	}
	if ac := string(m["authorCode"]); ac != "null" && !strings.HasPrefix(ac, `"`) {
		t.Fatalf("%s: authorCode %s is neither a string nor null", r, ac)
	}
	if !bytes.HasPrefix(m["chapters"], []byte("[")) {
		t.Fatalf("%s: chapters %s is not an array", r, m["chapters"])
	}
}

// checkBookHeaders checks the ETag of a book answer.
func checkBookHeaders(t testing.TB, r *response, b bookView) {
	t.Helper()
	if et, want := r.Header.Get("ETag"), fmt.Sprintf(`"%d"`, b.Version); et != want {
		t.Fatalf("%s: ETag %s, want %s", r, et, want)
	}
}

// createBook posts body to /books and checks the 201 answer.
func (i *instance) createBook(t testing.TB, body any, headers http.Header) bookView {
	t.Helper()
	var b bookView
	r := i.do(http.MethodPost, "/books", body, headers).expect(t, http.StatusCreated, &b)
	checkBookMembers(t, r)
	checkBookHeaders(t, r, b)
	if b.ID == "" || book.ValidateID("id", b.ID) != nil {
		t.Fatalf("%s: id %q is not a UUID", r, b.ID)
	}
	if loc := r.Header.Get("Location"); loc != "/books/"+b.ID {
		t.Fatalf("%s: Location %q, want /books/%s", r, loc, b.ID)
	}
	return b
}

// getBook returns the book id, or fails unless it answers status.
func (i *instance) getBook(t testing.TB, id string, status int) bookView {
	t.Helper()
	var b bookView
	r := i.get("/books/" + id)
	if status != http.StatusOK {
		r.expectProblem(t, status, "")
		return b
	}
	r.expect(t, http.StatusOK, &b)
	checkBookMembers(t, r)
	checkBookHeaders(t, r, b)
	return b
}

// putBook sends a PUT to /books/{id}{sub} and checks the 200 answer.
func (i *instance) putBook(t testing.TB, id, sub string, body any, headers http.Header) bookView {
	t.Helper()
	var b bookView
	r := i.do(http.MethodPut, "/books/"+id+sub, body, headers).expect(t, http.StatusOK, &b)
	checkBookMembers(t, r)
	checkBookHeaders(t, r, b)
	return b
}

// addChapter adds a chapter and checks the 201 answer.
func (i *instance) addChapter(t testing.TB, id, title, content string) chapterView {
	t.Helper()
	var c chapterView
	r := i.do(http.MethodPost, "/books/"+id+"/chapters", map[string]string{"title": title, "content": content}, nil).expect(t, http.StatusCreated, &c)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	if !sameSet(keys, []string{"id", "title", "content"}) {
		t.Fatalf("%s: members %v, want id, title, content", r, keys)
	}
	if c.Title != title || c.Content != content {
		t.Fatalf("%s: chapter %+v", r, c)
	}
	if r.Header.Get("ETag") == "" {
		t.Fatalf("%s: no ETag", r)
	}
	return c
}

// allBooks lists every book, page by page with limit, checking the cursor
// contract.
func (i *instance) allBooks(t testing.TB, limit int) []bookView {
	t.Helper()
	var all []bookView
	query := fmt.Sprintf("?limit=%d", limit)
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("too many pages of %d: %v", limit, all)
		}
		var p bookPage
		i.get("/books"+query).expect(t, http.StatusOK, &p)
		if len(p.Items) > limit {
			t.Fatalf("page of %d items with limit=%d", len(p.Items), limit)
		}
		all = append(all, p.Items...)
		if p.Next == "" {
			break
		}
		query = fmt.Sprintf("?limit=%d&after=%s", limit, url.QueryEscape(p.Next))
	}
	return all
}

func bookIDs(bs []bookView) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}

// poll retries check until it returns nil or readModelWait passes, then
// fails with check's last error (which should show the last body seen).
func poll(t testing.TB, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(readModelWait)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, readModelWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitAuthorBooks polls GET /authors/{code}/books until it answers want.
func (i *instance) awaitAuthorBooks(t testing.TB, code string, want authorBooksView) {
	t.Helper()
	poll(t, "GET /authors/"+code+"/books", func() error {
		r := i.get("/authors/" + code + "/books")
		if r.Status != http.StatusOK {
			return fmt.Errorf("last: %s", r)
		}
		var got authorBooksView
		if err := json.Unmarshal(r.Body, &got); err != nil {
			return fmt.Errorf("last: %s: %v", r, err)
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("want %+v, last: %s", want, r)
		}
		if !bytes.Contains(r.Body, []byte(`"books":[`)) {
			return fmt.Errorf("books is not an array; last: %s", r)
		}
		return nil
	})
}

// awaitStatus polls GET path until it answers status.
func (i *instance) awaitStatus(t testing.TB, path string, status int) {
	t.Helper()
	poll(t, "GET "+path, func() error {
		if r := i.get(path); r.Status != status {
			return fmt.Errorf("want %d, last: %s", status, r)
		}
		return nil
	})
}

// awaitBook polls GET /books/{id} until ok accepts it, and returns it.
func (i *instance) awaitBook(t testing.TB, id string, what string, ok func(bookView) bool) bookView {
	t.Helper()
	var b bookView
	poll(t, "GET /books/"+id+": "+what, func() error {
		r := i.get("/books/" + id)
		b = bookView{}
		if r.Status != http.StatusOK {
			return fmt.Errorf("last: %s", r)
		}
		if err := json.Unmarshal(r.Body, &b); err != nil {
			return fmt.Errorf("last: %s: %v", r, err)
		}
		if !ok(b) {
			return fmt.Errorf("last: %s", r)
		}
		return nil
	})
	return b
}

// bookEvents returns the committed events about book id, in order, decoded
// from their Avro frames with the schemas of the service's registry.
func (h *harness) bookEvents(id string) []book.Event {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := schemaregistry.New(ctx, h.Brokers, h.Service+".schemas")
	if err != nil {
		h.t.Fatalf("schema registry: %v", err)
	}
	defer reg.Close()
	codecs, err := catalogavro.New(reg)
	if err != nil {
		h.t.Fatal(err)
	}
	codec := codecs.BookEvents
	var out []book.Event
	for _, r := range h.readCommitted(eskafka.AggregateTopics(h.Service, "books").Events) {
		if string(r.Key) != id {
			continue
		}
		ev, err := codec.Decode(r.Value)
		if err != nil {
			h.t.Fatalf("decode event of book %s at %d/%d: %v", id, r.Partition, r.Offset, err)
		}
		out = append(out, ev)
	}
	return out
}

func eventNames(evs []book.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = strings.TrimPrefix(fmt.Sprintf("%T", e), "book.")
	}
	return out
}

// authorSets returns the author codes of the BookAuthorSet events in evs.
func authorSets(evs []book.Event) []string {
	var out []string
	for _, e := range evs {
		if s, ok := e.(book.BookAuthorSet); ok {
			out = append(out, s.AuthorCode)
		}
	}
	return out
}

func TestBooksHappyPath(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()

	if p := inst.allBooks(t, 100); len(p) != 0 {
		t.Fatalf("empty list: %v", p)
	}
	inst.createAuthor(t, "jane-austen", "Jane", "Austen")
	inst.createAuthor(t, "anne-bronte", "Anne", "Bronte")

	// Without an author: the server picks the id.
	emma := inst.createBook(t, map[string]any{"title": "Emma"}, nil)
	if want := (bookView{ID: emma.ID, Title: "Emma", Chapters: []chapterView{}, Version: 1}); !reflect.DeepEqual(emma, want) {
		t.Fatalf("created %v, want %v", emma, want)
	}
	// With an author: BookCreated and BookAuthorSet.
	pers := inst.createBook(t, map[string]any{"title": "Persuasion", "authorCode": "jane-austen"}, nil)
	if want := (bookView{ID: pers.ID, Title: "Persuasion", AuthorCode: strp("jane-austen"), Chapters: []chapterView{}, Version: 2}); !reflect.DeepEqual(pers, want) {
		t.Fatalf("created %v, want %v", pers, want)
	}
	// With a client-chosen id and an explicit null author.
	chosen := "3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f"
	sense := inst.createBook(t, map[string]any{"id": chosen, "title": "Sense and Sensibility", "authorCode": nil}, nil)
	if want := (bookView{ID: chosen, Title: "Sense and Sensibility", Chapters: []chapterView{}, Version: 1}); !reflect.DeepEqual(sense, want) {
		t.Fatalf("created %v, want %v", sense, want)
	}
	inst.do(http.MethodPost, "/books", map[string]any{"id": chosen, "title": "Again"}, nil).expectProblem(t, http.StatusConflict, "")
	if emma.ID == pers.ID {
		t.Fatalf("two books got id %s", emma.ID)
	}

	for _, b := range []bookView{emma, pers, sense} {
		if got := inst.getBook(t, b.ID, http.StatusOK); !reflect.DeepEqual(got, b) {
			t.Fatalf("GET %s: %v, want %v", b.ID, got, b)
		}
	}

	// List: ordered by id; every page size gives the same books.
	want := []bookView{emma, pers, sense}
	slices.SortFunc(want, func(a, b bookView) int { return strings.Compare(a.ID, b.ID) })
	for _, limit := range []int{1, 2, 3, 100} {
		if got := inst.allBooks(t, limit); !reflect.DeepEqual(got, want) {
			t.Fatalf("list with limit %d: %v, want %v", limit, got, want)
		}
	}
	var first bookPage
	inst.get("/books?limit=2").expect(t, http.StatusOK, &first)
	if len(first.Items) != 2 || first.Next == "" {
		t.Fatalf("first page of 2 of 3: %+v", first)
	}

	// Rename.
	emma = inst.putBook(t, emma.ID, "", map[string]string{"title": "Emma (2nd ed.)"}, nil)
	if emma.Title != "Emma (2nd ed.)" || emma.Version != 2 || emma.AuthorCode != nil {
		t.Fatalf("PUT title: %v", emma)
	}
	// Author: set, change, clear.
	emma = inst.putBook(t, emma.ID, "/author", map[string]any{"authorCode": "jane-austen"}, nil)
	if emma.AuthorCode == nil || *emma.AuthorCode != "jane-austen" || emma.Version != 3 {
		t.Fatalf("set author: %v", emma)
	}
	emma = inst.putBook(t, emma.ID, "/author", map[string]any{"authorCode": "anne-bronte"}, hdr("If-Match", `"3"`))
	if emma.AuthorCode == nil || *emma.AuthorCode != "anne-bronte" || emma.Version != 4 {
		t.Fatalf("change author: %v", emma)
	}
	emma = inst.putBook(t, emma.ID, "/author", `{"authorCode":null}`, nil)
	if emma.AuthorCode != nil || emma.Version != 5 || emma.Title != "Emma (2nd ed.)" {
		t.Fatalf("clear author: %v", emma)
	}
	if got := inst.getBook(t, emma.ID, http.StatusOK); !reflect.DeepEqual(got, emma) {
		t.Fatalf("GET after PUTs: %v, want %v", got, emma)
	}

	// If-Match mismatches: 412, nothing changes.
	inst.do(http.MethodPut, "/books/"+emma.ID, map[string]string{"title": "X"}, hdr("If-Match", `"4"`)).expectProblem(t, http.StatusPreconditionFailed, "")
	inst.do(http.MethodPut, "/books/"+emma.ID+"/author", map[string]any{"authorCode": "jane-austen"}, hdr("If-Match", `"1"`)).expectProblem(t, http.StatusPreconditionFailed, "")
	inst.do(http.MethodPost, "/books/"+emma.ID+"/chapters", map[string]string{"title": "X", "content": ""}, hdr("If-Match", `"6"`)).expectProblem(t, http.StatusPreconditionFailed, "")
	inst.do(http.MethodDelete, "/books/"+emma.ID, nil, hdr("If-Match", `"0"`)).expectProblem(t, http.StatusPreconditionFailed, "")
	if got := inst.getBook(t, emma.ID, http.StatusOK); !reflect.DeepEqual(got, emma) {
		t.Fatalf("GET after 412s: %v, want %v", got, emma)
	}
	// A matching one succeeds.
	emma = inst.putBook(t, emma.ID, "", map[string]string{"title": "Emma"}, hdr("If-Match", `"5"`))
	if emma.Version != 6 || emma.Title != "Emma" {
		t.Fatalf("PUT with If-Match: %v", emma)
	}

	// Chapters: ids 1, 2; remove 2; the next is 3, never 2 again.
	if c := inst.addChapter(t, emma.ID, "Chapter I", "Emma Woodhouse, handsome, clever, and rich"); c.ID != 1 {
		t.Fatalf("first chapter id %d", c.ID)
	}
	if c := inst.addChapter(t, emma.ID, "Chapter II", ""); c.ID != 2 {
		t.Fatalf("second chapter id %d", c.ID)
	}
	inst.do(http.MethodDelete, "/books/"+emma.ID+"/chapters/2", nil, nil).expect(t, http.StatusNoContent, nil)
	inst.do(http.MethodDelete, "/books/"+emma.ID+"/chapters/2", nil, nil).expectProblem(t, http.StatusNotFound, "")
	if c := inst.addChapter(t, emma.ID, "Chapter III", "Mr. Knightley"); c.ID != 3 {
		t.Fatalf("chapter added after a removal got id %d, want 3", c.ID)
	}
	emma = inst.getBook(t, emma.ID, http.StatusOK)
	wantChapters := []chapterView{{1, "Chapter I", "Emma Woodhouse, handsome, clever, and rich"}, {3, "Chapter III", "Mr. Knightley"}}
	if !reflect.DeepEqual(emma.Chapters, wantChapters) || emma.Version != 10 {
		t.Fatalf("after chapters: %v, want chapters %+v at version 10", emma, wantChapters)
	}

	// Remove the book: one ChapterRemoved per remaining chapter, then
	// BookRemoved.
	inst.do(http.MethodDelete, "/books/"+emma.ID, nil, hdr("If-Match", `"10"`)).expect(t, http.StatusNoContent, nil)
	inst.getBook(t, emma.ID, http.StatusNotFound)
	inst.do(http.MethodDelete, "/books/"+emma.ID, nil, nil).expectProblem(t, http.StatusNotFound, "")
	inst.do(http.MethodPut, "/books/"+emma.ID, map[string]string{"title": "Emma"}, nil).expectProblem(t, http.StatusNotFound, "")
	inst.do(http.MethodPost, "/books/"+emma.ID+"/chapters", map[string]string{"title": "X", "content": ""}, nil).expectProblem(t, http.StatusNotFound, "")
	evs := h.bookEvents(emma.ID)
	wantNames := []string{"BookCreated", "BookUpdated", "BookAuthorSet", "BookAuthorSet", "BookAuthorSet", "BookUpdated",
		"ChapterAdded", "ChapterAdded", "ChapterRemoved", "ChapterAdded", "ChapterRemoved", "ChapterRemoved", "BookRemoved"}
	if got := eventNames(evs); !slices.Equal(got, wantNames) {
		t.Fatalf("events of the removed book: %v, want %v", got, wantNames)
	}
	tail := evs[len(evs)-3:]
	if want := []book.Event{book.ChapterRemoved{ID: emma.ID, ChapterID: 1}, book.ChapterRemoved{ID: emma.ID, ChapterID: 3}, book.BookRemoved{ID: emma.ID}}; !reflect.DeepEqual(tail, want) {
		t.Fatalf("events ending the book: %+v, want %+v", tail, want)
	}
	if got := authorSets(evs); !slices.Equal(got, []string{"jane-austen", "anne-bronte", ""}) {
		t.Fatalf("author events: %q", got)
	}
	if got := bookIDs(inst.allBooks(t, 100)); slices.Contains(got, emma.ID) {
		t.Fatalf("removed book listed: %v", got)
	}
	// A removed id may be created again, from version 1.
	again := inst.createBook(t, map[string]any{"id": emma.ID, "title": "Emma"}, nil)
	if again.Version != 1 || len(again.Chapters) != 0 {
		t.Fatalf("re-created: %v", again)
	}

	// Idempotency-Key without an id: the retry names the same book and
	// answers the first outcome, creating nothing.
	key := hdr("Idempotency-Key", "create-northanger-1")
	nb1 := inst.createBook(t, map[string]any{"title": "Northanger Abbey", "authorCode": "jane-austen"}, key)
	nb2 := inst.createBook(t, map[string]any{"title": "Northanger Abbey", "authorCode": "jane-austen"}, key)
	if !reflect.DeepEqual(nb1, nb2) {
		t.Fatalf("retry answered %v, first %v", nb2, nb1)
	}
	// Another key is another book.
	nb3 := inst.createBook(t, map[string]any{"title": "Northanger Abbey", "authorCode": "jane-austen"}, hdr("Idempotency-Key", "create-northanger-2"))
	if nb3.ID == nb1.ID {
		t.Fatalf("another Idempotency-Key gave the same book %s", nb3.ID)
	}
	// A later write on the book is processed after both attempts.
	inst.putBook(t, nb1.ID, "", map[string]string{"title": "Northanger Abbey (1817)"}, nil)
	if got := eventNames(h.bookEvents(nb1.ID)); !slices.Equal(got, []string{"BookCreated", "BookAuthorSet", "BookUpdated"}) {
		t.Fatalf("events of the idempotent create: %v", got)
	}
	// The retry still answers the first outcome.
	if nb4 := inst.createBook(t, map[string]any{"title": "Northanger Abbey", "authorCode": "jane-austen"}, key); !reflect.DeepEqual(nb4, nb1) {
		t.Fatalf("late retry answered %v, want %v", nb4, nb1)
	}
	if got := eventNames(h.bookEvents(nb1.ID)); !slices.Equal(got, []string{"BookCreated", "BookAuthorSet", "BookUpdated"}) {
		t.Fatalf("events after the late retry: %v", got)
	}

	// A retried chapter answers the first chapter; a retried removal 204
	// twice.
	ck := hdr("Idempotency-Key", "chapter-1")
	var c1, c2 chapterView
	inst.do(http.MethodPost, "/books/"+nb1.ID+"/chapters", map[string]string{"title": "Volume I", "content": "No one who had ever seen Catherine Morland"}, ck).expect(t, http.StatusCreated, &c1)
	inst.do(http.MethodPost, "/books/"+nb1.ID+"/chapters", map[string]string{"title": "Volume I", "content": "No one who had ever seen Catherine Morland"}, ck).expect(t, http.StatusCreated, &c2)
	if c1 != c2 || c1.ID != 1 || c1.Title != "Volume I" {
		t.Fatalf("retried chapter answered %+v, first %+v", c2, c1)
	}
	rk := hdr("Idempotency-Key", "remove-1")
	inst.do(http.MethodDelete, "/books/"+nb1.ID, nil, rk).expect(t, http.StatusNoContent, nil)
	inst.do(http.MethodDelete, "/books/"+nb1.ID, nil, rk).expect(t, http.StatusNoContent, nil)
	inst.getBook(t, nb1.ID, http.StatusNotFound)
	if got := eventNames(h.bookEvents(nb1.ID)); !slices.Equal(got, []string{"BookCreated", "BookAuthorSet", "BookUpdated", "ChapterAdded", "ChapterRemoved", "BookRemoved"}) {
		t.Fatalf("events after retried chapter and removal: %v", got)
	}
}

// TestBooksBadInput sends bad input to every book route and checks that each
// gets its 4xx problem and writes nothing.
func TestBooksBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()
	inst.createAuthor(t, "jane-austen", "Jane", "Austen")
	inst.createAuthor(t, "gone-author", "Gone", "Author")
	inst.do(http.MethodDelete, "/authors/gone-author", nil, nil).expect(t, http.StatusNoContent, nil)
	b := inst.createBook(t, map[string]any{"title": "Emma", "authorCode": "jane-austen"}, nil)
	inst.addChapter(t, b.ID, "Chapter I", "Emma Woodhouse")
	b = inst.getBook(t, b.ID, http.StatusOK)
	bookPath := "/books/" + b.ID

	fresh := ids.New() // an id no book has; checked absent after each case
	long := strings.Repeat("a", httpapi.MaxBodyBytes)
	type tc struct {
		name    string
		method  string
		path    string
		body    any
		headers http.Header
		status  int
		field   string
		code    string // the problem's code, when set
	}
	cases := []tc{
		// Titles.
		{name: "blank title", method: "POST", path: "/books", body: map[string]any{"id": fresh, "title": "  "}, status: 422, field: "title", code: "invalid"},
		{name: "blank title without id", method: "POST", path: "/books", body: map[string]any{"title": ""}, status: 422, field: "title"},
		{name: "missing title", method: "POST", path: "/books", body: map[string]any{"id": fresh}, status: 422, field: "title"},
		{name: "null title", method: "POST", path: "/books", body: `{"title":null}`, status: 422, field: "title"},
		{name: "empty object", method: "POST", path: "/books", body: `{}`, status: 422, field: "title"},
		{name: "title too long", method: "POST", path: "/books", body: map[string]any{"id": fresh, "title": strings.Repeat("t", 201)}, status: 422, field: "title"},
		{name: "title wrong type", method: "POST", path: "/books", body: `{"title":7}`, status: 422, field: "title"},
		{name: "PUT blank title", method: "PUT", path: bookPath, body: `{"title":" "}`, status: 422, field: "title"},
		{name: "PUT missing title", method: "PUT", path: bookPath, body: `{}`, status: 422, field: "title"},
		// Ids.
		{name: "malformed id in body", method: "POST", path: "/books", body: map[string]any{"id": "not-a-uuid", "title": "X"}, status: 422, field: "id"},
		{name: "upper-case id in body", method: "POST", path: "/books", body: map[string]any{"id": strings.ToUpper(fresh), "title": "X"}, status: 422, field: "id"},
		{name: "empty id in body", method: "POST", path: "/books", body: map[string]any{"id": "", "title": "X"}, status: 422, field: "id"},
		{name: "id wrong type", method: "POST", path: "/books", body: `{"id":12,"title":"X"}`, status: 422, field: "id"},
		{name: "existing id", method: "POST", path: "/books", body: map[string]any{"id": b.ID, "title": "Other"}, status: 409},
		{name: "GET malformed UUID", method: "GET", path: "/books/not-a-uuid", status: 400, field: "id"},
		{name: "GET upper-case UUID", method: "GET", path: "/books/" + strings.ToUpper(b.ID), status: 400, field: "id"},
		{name: "PUT malformed UUID", method: "PUT", path: "/books/123", body: `{"title":"X"}`, status: 400, field: "id"},
		{name: "PUT author malformed UUID", method: "PUT", path: "/books/123/author", body: `{"authorCode":null}`, status: 400, field: "id"},
		{name: "POST chapter malformed UUID", method: "POST", path: "/books/123/chapters", body: `{"title":"X","content":""}`, status: 400, field: "id"},
		{name: "DELETE chapter malformed UUID", method: "DELETE", path: "/books/123/chapters/1", status: 400, field: "id"},
		{name: "DELETE malformed UUID", method: "DELETE", path: "/books/" + b.ID + "0", status: 400, field: "id"},
		// Unknown books and chapters.
		{name: "GET unknown book", method: "GET", path: "/books/" + fresh, status: 404},
		{name: "PUT unknown book", method: "PUT", path: "/books/" + fresh, body: `{"title":"X"}`, status: 404, code: "not_found"},
		{name: "PUT author of unknown book", method: "PUT", path: "/books/" + fresh + "/author", body: `{"authorCode":"jane-austen"}`, status: 404},
		{name: "POST chapter of unknown book", method: "POST", path: "/books/" + fresh + "/chapters", body: `{"title":"X","content":""}`, status: 404},
		{name: "DELETE chapter of unknown book", method: "DELETE", path: "/books/" + fresh + "/chapters/1", status: 404},
		{name: "DELETE unknown book", method: "DELETE", path: "/books/" + fresh, status: 404},
		{name: "unknown chapter", method: "DELETE", path: bookPath + "/chapters/2", status: 404, code: "not_found"},
		{name: "chapterId x", method: "DELETE", path: bookPath + "/chapters/x", status: 400, field: "chapterId"},
		{name: "chapterId 0", method: "DELETE", path: bookPath + "/chapters/0", status: 400, field: "chapterId"},
		{name: "chapterId -1", method: "DELETE", path: bookPath + "/chapters/-1", status: 400, field: "chapterId"},
		{name: "chapterId 1.0", method: "DELETE", path: bookPath + "/chapters/1.0", status: 400, field: "chapterId"},
		{name: "chapterId overflow", method: "DELETE", path: bookPath + "/chapters/99999999999999999999", status: 400, field: "chapterId"},
		// Authors.
		{name: "unknown author on create", method: "POST", path: "/books", body: map[string]any{"id": fresh, "title": "X", "authorCode": "nobody"}, status: 422, field: "authorCode", code: "unknown_reference"},
		{name: "unknown author on create without id", method: "POST", path: "/books", body: map[string]any{"title": "X", "authorCode": "nobody"}, status: 422, field: "authorCode", code: "unknown_reference"},
		{name: "deleted author on create", method: "POST", path: "/books", body: map[string]any{"id": fresh, "title": "X", "authorCode": "gone-author"}, status: 422, field: "authorCode", code: "unknown_reference"},
		{name: "invalid author on create", method: "POST", path: "/books", body: map[string]any{"id": fresh, "title": "X", "authorCode": "Jane Austen"}, status: 422, field: "authorCode", code: "invalid"},
		{name: "empty author on create", method: "POST", path: "/books", body: map[string]any{"id": fresh, "title": "X", "authorCode": ""}, status: 422, field: "authorCode"},
		{name: "author too long on create", method: "POST", path: "/books", body: map[string]any{"id": fresh, "title": "X", "authorCode": strings.Repeat("a", 65)}, status: 422, field: "authorCode"},
		{name: "author wrong type on create", method: "POST", path: "/books", body: `{"title":"X","authorCode":5}`, status: 422, field: "authorCode"},
		{name: "unknown author on PUT", method: "PUT", path: bookPath + "/author", body: `{"authorCode":"nobody"}`, status: 422, field: "authorCode", code: "unknown_reference"},
		{name: "deleted author on PUT", method: "PUT", path: bookPath + "/author", body: `{"authorCode":"gone-author"}`, status: 422, field: "authorCode", code: "unknown_reference"},
		{name: "invalid author on PUT", method: "PUT", path: bookPath + "/author", body: `{"authorCode":"-x-"}`, status: 422, field: "authorCode", code: "invalid"},
		{name: "empty author on PUT", method: "PUT", path: bookPath + "/author", body: `{"authorCode":""}`, status: 422, field: "authorCode"},
		{name: "author wrong type on PUT", method: "PUT", path: bookPath + "/author", body: `{"authorCode":["jane-austen"]}`, status: 422, field: "authorCode"},
		{name: "missing authorCode on PUT", method: "PUT", path: bookPath + "/author", body: `{}`, status: 422, field: "authorCode"},
		// Chapters.
		{name: "chapter missing content", method: "POST", path: bookPath + "/chapters", body: `{"title":"X"}`, status: 422, field: "content"},
		{name: "chapter missing title", method: "POST", path: bookPath + "/chapters", body: `{"content":"X"}`, status: 422, field: "title"},
		{name: "chapter blank title", method: "POST", path: bookPath + "/chapters", body: `{"title":"","content":"X"}`, status: 422, field: "title"},
		{name: "chapter content too long", method: "POST", path: bookPath + "/chapters", body: map[string]string{"title": "X", "content": strings.Repeat("c", book.MaxContentLen+1)}, status: 422, field: "content"},
		// Content types.
		{name: "POST text/plain", method: "POST", path: "/books", body: map[string]any{"id": fresh, "title": "X"}, headers: hdr("Content-Type", "text/plain"), status: 415},
		{name: "POST no content type", method: "POST", path: "/books", body: map[string]any{"id": fresh, "title": "X"}, headers: hdr("Content-Type", ""), status: 415},
		{name: "PUT text/plain", method: "PUT", path: bookPath, body: `{"title":"X"}`, headers: hdr("Content-Type", "text/plain"), status: 415},
		{name: "PUT author form", method: "PUT", path: bookPath + "/author", body: `{"authorCode":null}`, headers: hdr("Content-Type", "application/x-www-form-urlencoded"), status: 415},
		{name: "POST chapter text/json", method: "POST", path: bookPath + "/chapters", body: `{"title":"X","content":""}`, headers: hdr("Content-Type", "text/json"), status: 415},
		{name: "command text/plain", method: "POST", path: "/books/commands", body: `{"type":"RemoveBook","id":"` + b.ID + `"}`, headers: hdr("Content-Type", "text/plain"), status: 415},
		// Body syntax.
		{name: "unknown field", method: "POST", path: "/books", body: map[string]any{"id": fresh, "title": "X", "isbn": "123"}, status: 400, field: "isbn"},
		{name: "PUT unknown field", method: "PUT", path: bookPath, body: `{"title":"X","authorCode":null}`, status: 400, field: "authorCode"},
		{name: "PUT author unknown field", method: "PUT", path: bookPath + "/author", body: `{"authorCode":null,"title":"X"}`, status: 400, field: "title"},
		{name: "chapter unknown field", method: "POST", path: bookPath + "/chapters", body: `{"title":"X","content":"","id":4}`, status: 400, field: "id"},
		{name: "malformed JSON", method: "POST", path: "/books", body: `{"title":`, status: 400},
		{name: "empty body", method: "POST", path: "/books", body: "", status: 400},
		{name: "array body", method: "PUT", path: bookPath, body: `["X"]`, status: 400},
		{name: "trailing garbage", method: "PUT", path: bookPath + "/author", body: `{"authorCode":null} x`, status: 400},
		{name: "body over 1 MiB", method: "POST", path: bookPath + "/chapters", body: `{"title":"X","content":"` + long + `"}`, status: 413},
		// Preconditions and headers.
		{name: "If-Match mismatch PUT", method: "PUT", path: bookPath, body: `{"title":"X"}`, headers: hdr("If-Match", `"1"`), status: 412},
		{name: "If-Match mismatch PUT author", method: "PUT", path: bookPath + "/author", body: `{"authorCode":null}`, headers: hdr("If-Match", `"2"`), status: 412},
		{name: "If-Match mismatch chapter", method: "POST", path: bookPath + "/chapters", body: `{"title":"X","content":""}`, headers: hdr("If-Match", `"9"`), status: 412},
		{name: "If-Match mismatch DELETE chapter", method: "DELETE", path: bookPath + "/chapters/1", headers: hdr("If-Match", `"1"`), status: 412},
		{name: "If-Match mismatch DELETE", method: "DELETE", path: bookPath, headers: hdr("If-Match", `"0"`), status: 412},
		{name: "If-Match on a create that exists", method: "POST", path: "/books", body: map[string]any{"id": b.ID, "title": "X"}, headers: hdr("If-Match", `"0"`), status: 412},
		{name: "malformed If-Match", method: "PUT", path: bookPath, body: `{"title":"X"}`, headers: hdr("If-Match", `"v3"`), status: 400},
		{name: "Idempotency-Key too long", method: "POST", path: "/books", body: map[string]any{"title": "X"}, headers: hdr("Idempotency-Key", strings.Repeat("k", 256)), status: 400},
		// Lists and commands.
		{name: "limit=0", method: "GET", path: "/books?limit=0", status: 400, field: "limit"},
		{name: "bad cursor", method: "GET", path: "/books?after=" + url.QueryEscape("!!"), status: 400, field: "after"},
		{name: "unknown command", method: "POST", path: "/books/commands", body: `{"type":"BurnBook","id":"` + b.ID + `"}`, status: 422, field: "type"},
		{name: "command malformed id", method: "POST", path: "/books/commands", body: `{"type":"RemoveBook","id":"x"}`, status: 422, field: "id"},
		{name: "command unknown field", method: "POST", path: "/books/commands", body: `{"type":"RemoveBook","id":"` + b.ID + `","force":true}`, status: 400, field: "force"},
		// Books of an author.
		{name: "books of unknown author", method: "GET", path: "/authors/nobody/books", status: 404},
		{name: "books of deleted author", method: "GET", path: "/authors/gone-author/books", status: 404},
		{name: "books of malformed code", method: "GET", path: "/authors/Jane_Austen/books", status: 400, field: "code"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := inst.do(c.method, c.path, c.body, c.headers)
			if r.Status >= 500 {
				t.Fatalf("server error: %s", r)
			}
			p := r.expectProblem(t, c.status, c.field)
			if c.code != "" && p.Code != c.code {
				t.Fatalf("%s: problem code %q, want %q", r, p.Code, c.code)
			}
			if r.Header.Get("ETag") != "" || r.Header.Get("Location") != "" {
				t.Fatalf("%s: a problem with ETag or Location: %v", r, r.Header)
			}
			inst.getBook(t, fresh, http.StatusNotFound)
			if got := inst.getBook(t, b.ID, http.StatusOK); !reflect.DeepEqual(got, b) {
				t.Fatalf("book changed to %v, was %v", got, b)
			}
		})
	}

	t.Run("wrong method", func(t *testing.T) {
		for _, c := range []struct{ method, path, allow string }{
			{"PATCH", bookPath, "GET, PUT, DELETE"},
			{"DELETE", "/books", "GET, POST"},
			{"GET", bookPath + "/author", "PUT"},
			{"GET", bookPath + "/chapters", "POST"},
			{"GET", bookPath + "/chapters/1", "DELETE"},
		} {
			r := inst.do(c.method, c.path, nil, nil)
			r.expectProblem(t, http.StatusMethodNotAllowed, "")
			if got := strings.Split(r.Header.Get("Allow"), ", "); !sameSet(got, strings.Split(c.allow, ", ")) {
				t.Errorf("%s: Allow %q, want %q", r, r.Header.Get("Allow"), c.allow)
			}
		}
	})

	// Nothing was written: one book, with the events of the set-up only.
	if got := inst.allBooks(t, 100); len(got) != 1 || !reflect.DeepEqual(got[0], b) {
		t.Fatalf("books after bad input: %v, want only %v", got, b)
	}
	var keys []string
	for _, r := range h.readCommitted(h.Service + ".books.events") {
		keys = append(keys, string(r.Key))
	}
	if len(keys) != 3 || slices.ContainsFunc(keys, func(k string) bool { return k != b.ID }) {
		t.Fatalf("book events after bad input are about %v, want 3 about %s", keys, b.ID)
	}
	if got := eventNames(h.bookEvents(b.ID)); !slices.Equal(got, []string{"BookCreated", "BookAuthorSet", "ChapterAdded"}) {
		t.Fatalf("events of the book: %v", got)
	}
	for _, r := range h.readCommitted(h.Service + ".books.changelog") {
		if string(r.Key) != b.ID {
			t.Fatalf("changelog record about %q after bad input", r.Key)
		}
	}
}

// TestBooksByAuthor follows the read model through creations, moves,
// renames, removals and author changes, then the reaction to a deleted
// author, then a rebuild of every store from the topics.
func TestBooksByAuthor(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()

	inst.createAuthor(t, "ursula-le-guin", "Ursula", "Le Guin")
	inst.createAuthor(t, "octavia-butler", "Octavia", "Butler")
	inst.get("/authors/nobody/books").expectProblem(t, http.StatusNotFound, "")
	inst.awaitAuthorBooks(t, "octavia-butler", booksOf("octavia-butler", "Octavia", "Butler"))

	create := func(title, code string) bookView {
		t.Helper()
		body := map[string]any{"title": title}
		if code != "" {
			body["authorCode"] = code
		}
		return inst.createBook(t, body, nil)
	}
	left := create("The Left Hand of Darkness", "ursula-le-guin")
	wizard := create("A Wizard of Earthsea", "ursula-le-guin")
	disp := create("The Dispossessed", "ursula-le-guin")
	lathe := create("Lathe of Heaven", "")
	kindred := create("Kindred", "octavia-butler")
	anon := create("Beowulf", "")
	// Assigned after creation.
	inst.putBook(t, lathe.ID, "/author", map[string]any{"authorCode": "ursula-le-guin"}, nil)

	ref := func(b bookView, title string) bookRef { return bookRef{b.ID, title} }
	inst.awaitAuthorBooks(t, "ursula-le-guin", booksOf("ursula-le-guin", "Ursula", "Le Guin",
		ref(wizard, "A Wizard of Earthsea"), ref(lathe, "Lathe of Heaven"), ref(disp, "The Dispossessed"), ref(left, "The Left Hand of Darkness")))
	inst.awaitAuthorBooks(t, "octavia-butler", booksOf("octavia-butler", "Octavia", "Butler", ref(kindred, "Kindred")))

	// Move a book from one author to the other: it is listed under the new
	// one only.
	inst.putBook(t, disp.ID, "/author", map[string]any{"authorCode": "octavia-butler"}, nil)
	inst.awaitAuthorBooks(t, "octavia-butler", booksOf("octavia-butler", "Octavia", "Butler", ref(kindred, "Kindred"), ref(disp, "The Dispossessed")))
	inst.awaitAuthorBooks(t, "ursula-le-guin", booksOf("ursula-le-guin", "Ursula", "Le Guin",
		ref(wizard, "A Wizard of Earthsea"), ref(lathe, "Lathe of Heaven"), ref(left, "The Left Hand of Darkness")))

	// Rename: the new title, in its new place.
	inst.putBook(t, lathe.ID, "", map[string]string{"title": "The Lathe of Heaven"}, nil)
	inst.awaitAuthorBooks(t, "ursula-le-guin", booksOf("ursula-le-guin", "Ursula", "Le Guin",
		ref(wizard, "A Wizard of Earthsea"), ref(lathe, "The Lathe of Heaven"), ref(left, "The Left Hand of Darkness")))
	// Chapters change nothing in the list.
	inst.addChapter(t, left.ID, "Chapter 1", "A Parade in Erhenrang")

	// Remove a book: gone from the list.
	inst.do(http.MethodDelete, "/books/"+wizard.ID, nil, nil).expect(t, http.StatusNoContent, nil)
	inst.awaitAuthorBooks(t, "ursula-le-guin", booksOf("ursula-le-guin", "Ursula", "Le Guin",
		ref(lathe, "The Lathe of Heaven"), ref(left, "The Left Hand of Darkness")))

	// Author names.
	inst.do(http.MethodPut, "/authors/ursula-le-guin", map[string]string{"firstName": "Ursula K.", "lastName": "Le Guin"}, nil).expect(t, http.StatusOK, nil)
	inst.do(http.MethodPut, "/authors/octavia-butler", map[string]string{"firstName": "Octavia E.", "lastName": "Butler"}, nil).expect(t, http.StatusOK, nil)
	inst.awaitAuthorBooks(t, "ursula-le-guin", booksOf("ursula-le-guin", "Ursula K.", "Le Guin",
		ref(lathe, "The Lathe of Heaven"), ref(left, "The Left Hand of Darkness")))
	inst.awaitAuthorBooks(t, "octavia-butler", booksOf("octavia-butler", "Octavia E.", "Butler", ref(kindred, "Kindred"), ref(disp, "The Dispossessed")))

	// Two more of her books, moved to the other author just before her
	// deletion: the read model may or may not have seen the moves when the
	// deletion arrives (the reaction may send commands for them); either
	// way they keep their new author.
	coming := create("Always Coming Home", "ursula-le-guin")
	word := create("The Word for World Is Forest", "ursula-le-guin")
	inst.putBook(t, coming.ID, "/author", map[string]any{"authorCode": "octavia-butler"}, nil)
	inst.putBook(t, word.ID, "/author", map[string]any{"authorCode": "octavia-butler"}, nil)

	// Delete the author: the view is gone, and the reaction unassigns
	// every book that was theirs, once each. The books moved away keep
	// their new author.
	inst.do(http.MethodDelete, "/authors/ursula-le-guin", nil, nil).expect(t, http.StatusNoContent, nil)
	inst.awaitStatus(t, "/authors/ursula-le-guin/books", http.StatusNotFound)
	for _, b := range []bookView{left, lathe} {
		got := inst.awaitBook(t, b.ID, "author unassigned by the reaction", func(b bookView) bool { return b.AuthorCode == nil })
		if b.ID == left.ID && len(got.Chapters) != 1 {
			t.Fatalf("unassigned book lost its chapters: %v", got)
		}
	}
	// Writes on these books are processed after the reaction's commands
	// already sent for them (commands of one key are ordered).
	left = inst.putBook(t, left.ID, "", map[string]string{"title": "The Left Hand of Darkness"}, nil)
	lathe = inst.putBook(t, lathe.ID, "", map[string]string{"title": "The Lathe of Heaven"}, nil)
	for _, c := range []struct {
		b    bookView
		sets []string
	}{
		{left, []string{"ursula-le-guin", ""}},
		{lathe, []string{"ursula-le-guin", ""}},
		{disp, []string{"ursula-le-guin", "octavia-butler"}},
		{coming, []string{"ursula-le-guin", "octavia-butler"}},
		{word, []string{"ursula-le-guin", "octavia-butler"}},
		{kindred, []string{"octavia-butler"}},
		{anon, nil},
	} {
		evs := h.bookEvents(c.b.ID)
		if got := authorSets(evs); !slices.Equal(got, c.sets) {
			t.Fatalf("%q: BookAuthorSet events %q (events %v), want %q", c.b.Title, got, eventNames(evs), c.sets)
		}
	}
	if left.AuthorCode != nil || lathe.AuthorCode != nil {
		t.Fatalf("unassigned books: %v, %v", left, lathe)
	}
	for _, b := range []bookView{disp, coming, word} {
		if got := inst.getBook(t, b.ID, http.StatusOK); got.AuthorCode == nil || *got.AuthorCode != "octavia-butler" {
			t.Fatalf("a book moved away before the deletion: %v", got)
		}
	}
	octavia := []bookRef{ref(coming, "Always Coming Home"), ref(kindred, "Kindred"), ref(disp, "The Dispossessed"), ref(word, "The Word for World Is Forest")}
	inst.awaitAuthorBooks(t, "octavia-butler", booksOf("octavia-butler", "Octavia E.", "Butler", octavia...))
	// A deleted author cannot be given to a book.
	inst.do(http.MethodPut, "/books/"+anon.ID+"/author", map[string]any{"authorCode": "ursula-le-guin"}, nil).expectProblem(t, http.StatusUnprocessableEntity, "authorCode")

	// Re-created, the author starts with no books.
	inst.createAuthor(t, "ursula-le-guin", "Ursula", "Le Guin")
	inst.awaitAuthorBooks(t, "ursula-le-guin", booksOf("ursula-le-guin", "Ursula", "Le Guin"))
	// Her history goes on (created, renamed, deleted, created: 4), and a
	// book given to her now carries that position: the reaction to her
	// first deletion cannot take it.
	if got := inst.get("/authors/ursula-le-guin").expect(t, http.StatusOK, nil).Header.Get(httpapi.PositionHeader); got != "4" {
		t.Fatalf("%s of the re-created author: %q, want 4", httpapi.PositionHeader, got)
	}
	earthsea := create("Tales from Earthsea", "ursula-le-guin")
	inst.awaitAuthorBooks(t, "ursula-le-guin", booksOf("ursula-le-guin", "Ursula", "Le Guin", ref(earthsea, "Tales from Earthsea")))
	if evs := h.bookEvents(earthsea.ID); len(evs) != 2 || evs[1] != (book.BookAuthorSet{ID: earthsea.ID, AuthorCode: "ursula-le-guin", AuthorPosition: 4}) {
		t.Fatalf("events of a book given to the re-created author: %+v", evs)
	}
	inst.do(http.MethodDelete, "/books/"+earthsea.ID, nil, nil).expect(t, http.StatusNoContent, nil)
	inst.awaitAuthorBooks(t, "ursula-le-guin", booksOf("ursula-le-guin", "Ursula", "Le Guin"))
	// A third author, deleted for good.
	inst.createAuthor(t, "anonymous", "Anon", "Ymous")
	inst.putBook(t, anon.ID, "/author", map[string]any{"authorCode": "anonymous"}, nil)
	inst.awaitAuthorBooks(t, "anonymous", booksOf("anonymous", "Anon", "Ymous", ref(anon, "Beowulf")))
	inst.do(http.MethodDelete, "/authors/anonymous", nil, nil).expect(t, http.StatusNoContent, nil)
	inst.awaitStatus(t, "/authors/anonymous/books", http.StatusNotFound)
	inst.awaitBook(t, anon.ID, "author unassigned by the reaction", func(b bookView) bool { return b.AuthorCode == nil })
	// Let every stage settle: a write to a book after its reaction, then
	// the views as they must be.
	anon = inst.putBook(t, anon.ID, "", map[string]string{"title": "Beowulf"}, nil)
	if got := authorSets(h.bookEvents(anon.ID)); !slices.Equal(got, []string{"anonymous", ""}) {
		t.Fatalf("Beowulf: BookAuthorSet events %q", got)
	}

	// The answers to compare after a rebuild.
	paths := []string{
		"/authors/ursula-le-guin/books", "/authors/octavia-butler/books", "/authors/anonymous/books", "/authors/nobody/books",
		"/books", "/books?limit=2", "/authors",
	}
	for _, b := range []bookView{left, wizard, disp, lathe, kindred, anon, coming, word} {
		paths = append(paths, "/books/"+b.ID)
	}
	// Page two of the books.
	var p1 bookPage
	inst.get("/books?limit=2").expect(t, http.StatusOK, &p1)
	if p1.Next == "" {
		t.Fatalf("no second page: %+v", p1)
	}
	paths = append(paths, "/books?limit=2&after="+url.QueryEscape(p1.Next))
	want := map[string]*response{}
	for _, p := range paths {
		want[p] = inst.get(p)
	}
	if got := len(inst.allBooks(t, 100)); got != 7 {
		t.Fatalf("%d books, want 7", got)
	}

	// Delete every store and start again: the same answers come back.
	inst.stop()
	inst = h.startWithoutStores()
	for _, p := range paths {
		r := inst.get(p)
		if w := want[p]; r.Status != w.Status || !bytes.Equal(r.Body, w.Body) || r.Header.Get("ETag") != w.Header.Get("ETag") {
			t.Errorf("after the rebuild: %s (ETag %s), before: %s (ETag %s)", r, r.Header.Get("ETag"), w, w.Header.Get("ETag"))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// And it goes on: a new book under an author, and a move.
	kind2 := create("Parable of the Sower", "octavia-butler")
	inst.putBook(t, anon.ID, "/author", map[string]any{"authorCode": "ursula-le-guin"}, nil)
	octavia = []bookRef{ref(coming, "Always Coming Home"), ref(kindred, "Kindred"), ref(kind2, "Parable of the Sower"), ref(disp, "The Dispossessed"), ref(word, "The Word for World Is Forest")}
	inst.awaitAuthorBooks(t, "octavia-butler", booksOf("octavia-butler", "Octavia E.", "Butler", octavia...))
	inst.awaitAuthorBooks(t, "ursula-le-guin", booksOf("ursula-le-guin", "Ursula", "Le Guin", ref(anon, "Beowulf")))
}

func TestBooksCommandsEndpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()
	b := inst.createBook(t, map[string]any{"title": "Emma"}, nil)

	post := func(body string) string {
		t.Helper()
		var acc map[string]string
		r := inst.do(http.MethodPost, "/books/commands", body, nil).expect(t, http.StatusAccepted, &acc)
		if acc["msgId"] == "" || len(acc) != 1 {
			t.Fatalf("202 body %v", acc)
		}
		if loc := r.Header.Get("Location"); loc != "/books/commands/"+acc["msgId"] {
			t.Fatalf("Location %q for msgId %s", loc, acc["msgId"])
		}
		return acc["msgId"]
	}
	// outcome long-polls the outcome, a few times on a loaded machine.
	outcome := func(msgID string) outcomeView {
		t.Helper()
		var out outcomeView
		for range 4 {
			r := inst.get("/books/commands/" + msgID + "?wait=5s")
			if r.Status == http.StatusNotFound {
				continue
			}
			r.expect(t, http.StatusOK, &out)
			if out.MsgID != msgID {
				t.Fatalf("outcome of %s: %+v", msgID, out)
			}
			return out
		}
		t.Fatalf("no outcome for %s within 20s", msgID)
		return out
	}

	id := post(`{"type":"AddChapter","id":"` + b.ID + `","title":"Chapter I","content":"Emma Woodhouse"}`)
	out := outcome(id)
	if out.Status != "accepted" || out.Version != 2 || out.Error != nil || len(out.Events) != 1 {
		t.Fatalf("outcome: %+v", out)
	}
	var ev map[string]any
	if err := json.Unmarshal(out.Events[0], &ev); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"type": "ChapterAdded", "id": b.ID, "chapterId": 1.0, "title": "Chapter I", "content": "Emma Woodhouse"}; !reflect.DeepEqual(ev, want) {
		t.Fatalf("event %v, want %v", ev, want)
	}
	if got := inst.getBook(t, b.ID, http.StatusOK); !reflect.DeepEqual(got.Chapters, []chapterView{{1, "Chapter I", "Emma Woodhouse"}}) || got.Version != 2 {
		t.Fatalf("book after AddChapter: %v", got)
	}

	// A rejected command: the chapter is unknown.
	rej := outcome(post(`{"type":"RemoveChapter","id":"` + b.ID + `","chapterId":7}`))
	if rej.Status != "rejected" || rej.Error == nil || rej.Error.Code != "not_found" || len(rej.Events) != 0 {
		t.Fatalf("rejected outcome: %+v (error %+v)", rej, rej.Error)
	}
	// Remove the book through a command: its events in order.
	out = outcome(post(`{"type":"RemoveBook","id":"` + b.ID + `"}`))
	if out.Status != "accepted" || len(out.Events) != 2 || !strings.Contains(string(out.Events[0]), `"type":"ChapterRemoved"`) || !strings.Contains(string(out.Events[1]), `"type":"BookRemoved"`) {
		t.Fatalf("RemoveBook outcome: %+v", out)
	}
	inst.getBook(t, b.ID, http.StatusNotFound)
	// Commands on the removed book are rejected.
	rej = outcome(post(`{"type":"AddChapter","id":"` + b.ID + `","title":"X","content":""}`))
	if rej.Status != "rejected" || rej.Error == nil || rej.Error.Code != "not_found" {
		t.Fatalf("AddChapter on a removed book: %+v", rej)
	}
	if got := eventNames(h.bookEvents(b.ID)); !slices.Equal(got, []string{"BookCreated", "ChapterAdded", "ChapterRemoved", "BookRemoved"}) {
		t.Fatalf("events: %v", got)
	}
	inst.get("/books/commands/00000000-0000-4000-8000-000000000000?wait=100ms").expectProblem(t, http.StatusNotFound, "")

	// Authors through commands: only existing ones, as through the
	// resource routes.
	inst.createAuthor(t, "jane-austen", "Jane", "Austen")
	inst.createAuthor(t, "gone-author", "Gone", "Author")
	inst.do(http.MethodDelete, "/authors/gone-author", nil, nil).expect(t, http.StatusNoContent, nil)
	p := inst.createBook(t, map[string]any{"title": "Persuasion"}, nil)
	for _, body := range []string{
		`{"type":"SetBookAuthor","id":"` + p.ID + `","authorCode":"nobody"}`,
		`{"type":"SetBookAuthor","id":"` + p.ID + `","authorCode":"gone-author"}`,
		`{"authorCode":"nobody","type":"SetBookAuthor","id":"` + p.ID + `"}`,
		`{"type":"CreateBook","id":"` + ids.New() + `","title":"X","authorCode":"nobody"}`,
	} {
		pr := inst.do(http.MethodPost, "/books/commands", body, nil).expectProblem(t, http.StatusUnprocessableEntity, "authorCode")
		if pr.Code != "unknown_reference" {
			t.Fatalf("%s: code %q", body, pr.Code)
		}
	}
	// An invalid code is the domain's rejection, an outcome.
	rej = outcome(post(`{"type":"SetBookAuthor","id":"` + p.ID + `","authorCode":"Not A Slug"}`))
	if rej.Status != "rejected" || rej.Error == nil || rej.Error.Code != "invalid" || rej.Error.Field != "authorCode" {
		t.Fatalf("invalid author code through a command: %+v (error %+v)", rej, rej.Error)
	}
	out = outcome(post(`{"type":"SetBookAuthor","id":"` + p.ID + `","authorCode":"jane-austen"}`))
	if out.Status != "accepted" || len(out.Events) != 1 {
		t.Fatalf("SetBookAuthor of an existing author: %+v", out)
	}
	out = outcome(post(`{"type":"SetBookAuthor","id":"` + p.ID + `","authorCode":""}`))
	if out.Status != "accepted" || len(out.Events) != 1 {
		t.Fatalf("SetBookAuthor clearing the author: %+v", out)
	}
	if got := authorSets(h.bookEvents(p.ID)); !slices.Equal(got, []string{"jane-austen", ""}) {
		t.Fatalf("author events: %q", got)
	}
}

// A retry of a write with the same Idempotency-Key is the same request
// even when the author it names was changed between the tries: the
// position of the author that the service adds to the command (the
// precheck's) is not part of what is compared. Before, the retry was
// refused as a reuse of the key for another command.
func TestRetryAfterTheAuthorChanged(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()
	inst.createAuthor(t, "mary-shelley", "Mary", "Shelley")
	key := hdr("Idempotency-Key", "frankenstein-1")
	first := inst.createBook(t, map[string]any{"title": "Frankenstein", "authorCode": "mary-shelley"}, key)
	inst.do(http.MethodPut, "/authors/mary-shelley", map[string]string{"firstName": "Mary W.", "lastName": "Shelley"}, nil).expect(t, http.StatusOK, nil)
	again := inst.createBook(t, map[string]any{"title": "Frankenstein", "authorCode": "mary-shelley"}, key)
	if again.ID != first.ID || again.Version != first.Version {
		t.Fatalf("the retry answered %v, the first try %v", again, first)
	}
	if evs := h.bookEvents(first.ID); len(evs) != 2 || evs[1] != (book.BookAuthorSet{ID: first.ID, AuthorCode: "mary-shelley", AuthorPosition: 1}) {
		t.Fatalf("events after the retry: %+v, want those of the first try", evs)
	}
	// The same key for another book is still refused.
	inst.do(http.MethodPost, "/books", map[string]any{"title": "The Last Man", "authorCode": "mary-shelley"}, key).
		expectProblem(t, http.StatusUnprocessableEntity, "")
}
