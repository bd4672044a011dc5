package catalogui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/web"
)

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
	}{{Authors(), names(authors...)}, {Books(), names(books...)}} {
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
	for pattern, h := range web.Handlers(web.Config{Title: Title, Aggregates: []web.Aggregate{Authors(), Books()}, Extension: Extension()}) {
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
