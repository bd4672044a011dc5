package service_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/httpapi"
	"github.com/bookscatalog/catalog/internal/domain/book"
)

// A book's history is kept forever, so it outgrows the book: chapters of
// the largest content added and removed again and again. A page of that
// history, however large its ?limit=, stops after httpapi.MaxPageBytes of
// events with its next cursor, as a list page does; without that a page of
// 1000 such events would be hundreds of MB, built in memory whole (and
// held while a client that does not read lets it sit).
func TestHistoryPageIsBoundedInBytes(t *testing.T) {
	i := newHarness(t).start()
	var b struct {
		ID string `json:"id"`
	}
	i.do(http.MethodPost, "/books", map[string]any{"title": "Long"}, nil).expect(t, http.StatusCreated, &b)
	// '<' is 6 bytes in JSON (\u003c): each ChapterAdded is ~600 KB.
	content := strings.Repeat("<", book.MaxContentLen)
	const adds = 10
	for n := range adds {
		var c struct {
			ID int64 `json:"id"`
		}
		i.do(http.MethodPost, "/books/"+b.ID+"/chapters", map[string]any{"title": fmt.Sprint("Chapter ", n), "content": content}, nil).expect(t, http.StatusCreated, &c)
		i.do(http.MethodDelete, fmt.Sprintf("/books/%s/chapters/%d", b.ID, c.ID), nil, nil).expect(t, http.StatusNoContent, nil)
	}
	const total = 1 + 2*adds
	for _, order := range []string{"asc", "desc"} {
		r := i.get("/books/" + b.ID + "/history?limit=1000&order=" + order)
		var p historyPage
		r.expect(t, http.StatusOK, &p)
		if p.Total != total {
			t.Fatalf("%s: total %d, want %d", order, p.Total, total)
		}
		// One event of ~600 KB may pass the bound, and the envelope.
		if len(r.Body) > httpapi.MaxPageBytes+700<<10 {
			t.Errorf("%s: a history page of %d events is %d bytes (next %q); a page stops after %d bytes of items", order, len(p.Items), len(r.Body), p.Next, httpapi.MaxPageBytes)
		}
		// Walking the pages still gives every event once, in order.
		_, all := walkHistory(t, i, "/books/"+b.ID, 1000, order)
		if len(all) != total {
			t.Fatalf("%s: walked %d events, want %d", order, len(all), total)
		}
		for k, it := range all {
			want := int64(k + 1)
			if order == "desc" {
				want = total - int64(k)
			}
			if it.Position != want {
				t.Fatalf("%s: item %d at position %d, want %d", order, k, it.Position, want)
			}
		}
	}
}

// A page of more events than the history reads at a time has them all, in
// order, with the cursor only where more follow.
func TestHistoryPageLongerThanAChunk(t *testing.T) {
	i := newHarness(t).start()
	i.do(http.MethodPost, "/authors", authorBody("ann", "Ann", "Radcliffe"), nil).expect(t, http.StatusCreated, nil)
	const total = 150
	for n := 2; n <= total; n++ {
		i.do(http.MethodPut, "/authors/ann", map[string]any{"firstName": "Ann", "lastName": fmt.Sprint("Radcliffe ", n)}, nil).expect(t, http.StatusOK, nil)
	}
	for _, tc := range []struct {
		order string
		limit int
		pages string
	}{
		{"asc", 1000, "[150]"}, {"desc", 1000, "[150]"},
		{"asc", 100, "[100 50]"}, {"desc", 100, "[100 50]"},
		{"asc", 150, "[150]"}, {"desc", 75, "[75 75]"},
	} {
		pages, all := walkHistory(t, i, "/authors/ann", tc.limit, tc.order)
		var sizes []int
		for _, p := range pages {
			sizes = append(sizes, len(p))
		}
		if fmt.Sprint(sizes) != tc.pages {
			t.Errorf("%s, limit %d: pages of %v events, want %s", tc.order, tc.limit, sizes, tc.pages)
		}
		for k, it := range all {
			want := int64(k + 1)
			if tc.order == "desc" {
				want = total - int64(k)
			}
			if it.Position != want {
				t.Fatalf("%s, limit %d: item %d at position %d, want %d", tc.order, tc.limit, k, it.Position, want)
			}
		}
	}
}
