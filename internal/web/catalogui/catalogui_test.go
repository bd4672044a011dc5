package catalogui

import (
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/internal/catalogapi"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/web"
)

// authorsAPI and booksAPI are the HTTP resources as far as the page uses
// them: their names.
func authorsAPI() *catalogapi.Authors {
	return &catalogapi.Authors{Aggregate: es.Aggregate[author.State, author.Command, author.Event]{Name: "authors"}, Singular: "author", KeyName: "code"}
}

func booksAPI() *catalogapi.Books {
	return &catalogapi.Books{Aggregate: es.Aggregate[book.State, book.Command, book.Event]{Name: "books"}, Singular: "book", KeyName: "id"}
}

// TestNamesAreTheResources: the page names each aggregate as its HTTP
// resource does (collection, singular, key), so that renaming one in the
// resource renames it on the page, with links to the renamed paths.
func TestNamesAreTheResources(t *testing.T) {
	writers := &catalogapi.Authors{Aggregate: es.Aggregate[author.State, author.Command, author.Event]{Name: "writers"}, Singular: "writer", KeyName: "slug"}
	volumes := &catalogapi.Books{Aggregate: es.Aggregate[book.State, book.Command, book.Event]{Name: "volumes"}, Singular: "volume", KeyName: "isbn"}
	for _, c := range []struct {
		got                 web.Aggregate
		name, singular, key string
	}{
		{Authors(writers), "writers", "writer", "slug"},
		{Books(volumes), "volumes", "volume", "isbn"},
	} {
		if c.got.Name != c.name || c.got.Singular != c.singular || c.got.Key != c.key {
			t.Errorf("page names %q, %q, %q; want the resource's %q, %q, %q", c.got.Name, c.got.Singular, c.got.Key, c.name, c.singular, c.key)
		}
	}
	srv := httptest.NewServer(mux(web.Handlers(web.Config{Title: Title, Aggregates: []web.Aggregate{Authors(writers), Books(volumes)}, Extension: Extension()})))
	defer srv.Close()
	page := html.UnescapeString(get(t, srv.URL+"/")) // the description is an attribute's value
	for _, want := range []string{`"path":"/writers"`, `"title":"Volumes"`, `"singular":"volume"`, `"key":"isbn"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

// TestEveryEventIsLabelled: each event type of the domain has its label
// on the page, and no label is for a type that does not exist.
func TestEveryEventIsLabelled(t *testing.T) {
	names := func(events ...any) []string {
		var out []string
		for _, e := range events {
			out = append(out, reflect.TypeOf(e).Name())
		}
		slices.Sort(out)
		return out
	}
	labelled := func(a web.Aggregate) []string {
		var out []string
		for _, l := range a.Events {
			if len(l.Describe) == 0 {
				t.Errorf("%s: %s has no description", a.Name, l.Type)
			}
			out = append(out, l.Type)
		}
		slices.Sort(out)
		return out
	}
	var authors, books []any
	for _, e := range author.Events() {
		authors = append(authors, e)
	}
	for _, e := range book.Events() {
		books = append(books, e)
	}
	for _, c := range []struct {
		agg  web.Aggregate
		want []string
	}{{Authors(authorsAPI()), names(authors...)}, {Books(booksAPI()), names(books...)}} {
		if got := labelled(c.agg); !slices.Equal(got, c.want) {
			t.Errorf("%s: labelled events %v, want %v", c.agg.Name, got, c.want)
		}
	}
}

// TestPage serves the catalog's page: its aggregates are valid, and its
// extension comes before the page's script, with the templates its views
// use.
func TestPage(t *testing.T) {
	mux := http.NewServeMux()
	for pattern, h := range web.Handlers(web.Config{Title: Title, Aggregates: []web.Aggregate{Authors(authorsAPI()), Books(booksAPI())}, Extension: Extension()}) {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	page := string(b)
	ext, app := strings.Index(page, `src="/ui/ext/catalog.js?v=`), strings.Index(page, `src="/ui/app.js?v=`)
	if ext < 0 || app < 0 || ext > app {
		t.Errorf("catalog.js at %d, app.js at %d: want the extension first", ext, app)
	}
	for _, id := range []string{"tpl-books", "tpl-book", "tpl-chapter", "tpl-author-books", "tpl-past-chapters", "author-codes"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("the page lacks #%s", id)
		}
	}
	if !strings.Contains(page, `href="/ui/ext/catalog.css?v=`) {
		t.Error("the page does not link catalog.css")
	}
}

// mux serves handlers by their patterns.
func mux(handlers map[string]http.Handler) *http.ServeMux {
	m := http.NewServeMux()
	for pattern, h := range handlers {
		m.Handle(pattern, h)
	}
	return m
}

// get returns the body of a GET of url.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
