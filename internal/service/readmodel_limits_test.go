package service_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/internal/projection"
)

// An author code's books-by-author view is one changelog record. An author
// with more books than that record can hold (here the view changelog takes
// 2,000 bytes, a dozen books; at the default 1 MiB it was about 4,400 books
// with 200-byte titles) has the book linked past it unassigned by the read
// model, and deleting the author still unassigns every book it has. Before,
// the links past the limit were dead-lettered: the list left those books
// out, and the author's deletion left them assigned to it for good.
func TestAuthorWhoseBooksOutgrowTheViewKeepsTheReaction(t *testing.T) {
	h := newHarness(t)
	view := projection.BooksByAuthorTopics(h.Service)
	h.limitTopic(view.Changelog, 2000, view.Specs()...)

	inst := h.start()
	const code = "prolific"
	inst.createAuthor(t, code, "Ann", "Prolific")
	var listed []bookRef
	var ids []string
	unassigned := 0
	for i := range 16 {
		title := fmt.Sprintf("Book %02d %s", i, strings.Repeat("x", 100))
		b := inst.createBook(t, map[string]any{"title": title, "authorCode": code}, nil)
		ids = append(ids, b.ID)
		// Wait for the read model to take the book in, or to give it
		// back, before the next: the books past the limit are then the
		// last ones.
		var got bookView
		for deadline := time.Now().Add(readModelWait); ; {
			got = inst.getBook(t, b.ID, http.StatusOK)
			r := inst.get("/authors/" + code + "/books")
			if got.AuthorCode == nil || strings.Contains(string(r.Body), b.ID) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("book %d (%s) neither listed under %s nor unassigned after %s: %s", i, b.ID, code, readModelWait, r)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got.AuthorCode == nil {
			unassigned++
			continue
		}
		if unassigned > 0 {
			t.Fatalf("book %d listed after %d were unassigned for want of room", i, unassigned)
		}
		listed = append(listed, bookRef{ID: b.ID, Title: title})
	}
	if unassigned == 0 || len(listed) == 0 {
		t.Fatalf("%d books listed, %d unassigned: the view changelog's limit was never reached, or nothing fit", len(listed), unassigned)
	}
	inst.awaitAuthorBooks(t, code, booksOf(code, "Ann", "Prolific", listed...))

	inst.do(http.MethodDelete, "/authors/"+code, nil, nil).expect(t, http.StatusNoContent, nil)
	for _, id := range ids {
		inst.awaitBook(t, id, "unassigned after its author's deletion", func(b bookView) bool { return b.AuthorCode == nil })
	}
}
