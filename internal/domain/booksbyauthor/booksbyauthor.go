// Package booksbyauthor is the pure logic of the "books by author" read
// model: which books each author has, kept from author and book events.
//
// Book events are keyed by book and author events by author, so the model
// is built in two steps. Step one follows each book (keyed by book id) and
// turns its events into Link changes addressed to an author. Step two keeps
// one View per author code (keyed by author code) from author events and
// Link changes. The two arrive in any order relative to each other, and the
// View is right whatever that order is.
package booksbyauthor

import (
	"cmp"
	"slices"

	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
)

// BookLink is what step one remembers of a book.
type BookLink struct {
	AuthorCode string `json:"authorCode,omitempty" avro:"authorCode"`
	Title      string `json:"title" avro:"title"`
}

// Link operations.
const (
	OpLink   = "link"
	OpUnlink = "unlink"
)

// Link adds (or renames) a book in an author's list, or removes it.
type Link struct {
	Op     string `json:"op" avro:"op"`
	BookID string `json:"bookId" avro:"bookId"`
	Title  string `json:"title,omitempty" avro:"title"`
}

// Routed is a Link addressed to an author.
type Routed struct {
	AuthorCode string
	Link       Link
}

// FollowBook folds one book event into the book's link state (exists is
// false for a book not seen yet) and returns the Link changes it causes.
// keep is false when the book is gone.
func FollowBook(prev BookLink, bookID string, ev book.Event) (next BookLink, keep bool, out []Routed) {
	next = prev
	switch e := ev.(type) {
	case book.BookCreated:
		next = BookLink{Title: e.Title}
	case book.BookUpdated:
		next.Title = e.Title
		if next.AuthorCode != "" {
			out = append(out, Routed{next.AuthorCode, Link{Op: OpLink, BookID: bookID, Title: next.Title}})
		}
	case book.BookAuthorSet:
		if prev.AuthorCode != "" && prev.AuthorCode != e.AuthorCode {
			out = append(out, Routed{prev.AuthorCode, Link{Op: OpUnlink, BookID: bookID}})
		}
		next.AuthorCode = e.AuthorCode
		if e.AuthorCode != "" {
			out = append(out, Routed{e.AuthorCode, Link{Op: OpLink, BookID: bookID, Title: next.Title}})
		}
	case book.BookRemoved:
		if prev.AuthorCode != "" {
			out = append(out, Routed{prev.AuthorCode, Link{Op: OpUnlink, BookID: bookID}})
		}
		return BookLink{}, false, out
	}
	return next, true, out
}

// Author is an author's names as the view shows them.
type Author struct {
	Code      string `json:"code" avro:"code"`
	FirstName string `json:"firstName" avro:"firstName"`
	LastName  string `json:"lastName" avro:"lastName"`
}

// View is one author code's entry: the author (nil while none exists) and
// the books currently linked to the code.
type View struct {
	Author *Author `json:"author,omitempty" avro:"author"`
	// Deleted marks a code whose author was deleted and not created
	// again: a book linked to it now must be unassigned.
	Deleted bool              `json:"deleted,omitempty" avro:"deleted"`
	Books   map[string]string `json:"books,omitempty" avro:"books"` // id -> title
}

// Empty reports whether the view holds nothing worth keeping.
func (v View) Empty() bool { return v.Author == nil && !v.Deleted && len(v.Books) == 0 }

// Book is one entry of an author's list.
type Book struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// List returns the books ordered by title, then id.
func (v View) List() []Book {
	out := make([]Book, 0, len(v.Books))
	for id, title := range v.Books {
		out = append(out, Book{ID: id, Title: title})
	}
	slices.SortFunc(out, func(a, b Book) int {
		return cmp.Or(cmp.Compare(a.Title, b.Title), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// ApplyAuthor folds an author event into the view. On deletion it returns
// the ids of the books to unassign (the reaction).
func ApplyAuthor(v View, code string, ev author.Event) (View, []string) {
	switch e := ev.(type) {
	case author.AuthorCreated:
		v.Author, v.Deleted = &Author{Code: code, FirstName: e.FirstName, LastName: e.LastName}, false
	case author.AuthorUpdated:
		v.Author = &Author{Code: code, FirstName: e.FirstName, LastName: e.LastName}
	case author.AuthorDeleted:
		v.Author, v.Deleted = nil, true
		return v, sortedIDs(v.Books)
	}
	return v, nil
}

// ApplyLink folds a Link change into the view. A book linked to a deleted
// author is to be unassigned too: it returns its id.
func ApplyLink(v View, l Link) (View, []string) {
	switch l.Op {
	case OpLink:
		books := make(map[string]string, len(v.Books)+1)
		for id, t := range v.Books {
			books[id] = t
		}
		books[l.BookID] = l.Title
		v.Books = books
		if v.Deleted {
			return v, []string{l.BookID}
		}
	case OpUnlink:
		if _, ok := v.Books[l.BookID]; ok {
			books := make(map[string]string, len(v.Books))
			for id, t := range v.Books {
				if id != l.BookID {
					books[id] = t
				}
			}
			v.Books = books
		}
	}
	return v, nil
}

func sortedIDs(m map[string]string) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
