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
	// AuthorPosition is the book's (book.State.AuthorPosition).
	AuthorPosition int64 `json:"authorPosition,omitempty" avro:"authorPosition,default=0"`
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
	// AuthorPosition tells which life of the author a linked book was
	// given to (book.SetBookAuthor.AuthorPosition); 0 when unknown.
	AuthorPosition int64 `json:"authorPosition,omitempty" avro:"authorPosition,default=0"`
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
			out = append(out, Routed{next.AuthorCode, Link{Op: OpLink, BookID: bookID, Title: next.Title, AuthorPosition: next.AuthorPosition}})
		}
	case book.BookAuthorSet:
		if prev.AuthorCode != "" && prev.AuthorCode != e.AuthorCode {
			out = append(out, Routed{prev.AuthorCode, Link{Op: OpUnlink, BookID: bookID}})
		}
		next.AuthorCode, next.AuthorPosition = e.AuthorCode, e.AuthorPosition
		if e.AuthorCode != "" {
			out = append(out, Routed{e.AuthorCode, Link{Op: OpLink, BookID: bookID, Title: next.Title, AuthorPosition: e.AuthorPosition}})
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
//
// A code may be deleted and created again. Its author events carry their
// position in the code's history (1, 2, 3…, never reset), and a book
// carries the position at which its author was seen to exist when it was
// given the book (Link.AuthorPosition), so a book given to a life of the
// code that ended (its position at or before DeletedAt) is told from one
// given to a later life, whatever order the two streams arrive in.
// Position 0 means unknown (records written before positions were): such
// a book belongs to whatever life the code is in.
type View struct {
	Author *Author `json:"author,omitempty" avro:"author"`
	// Deleted marks a code whose author was deleted and not created
	// again: a book linked to it now must be unassigned.
	Deleted bool              `json:"deleted,omitempty" avro:"deleted"`
	Books   map[string]string `json:"books,omitempty" avro:"books"` // id -> title
	// DeletedAt is the position of the code's last deletion; 0 when
	// none or unknown.
	DeletedAt int64 `json:"deletedAt,omitempty" avro:"deletedAt,default=0"`
	// Positions are the AuthorPosition of the books in Books that have
	// one.
	Positions map[string]int64 `json:"positions,omitempty" avro:"positions,default={}"`
}

// Unassign is the reaction to a book given to a deleted author: set its
// author to none if it still has AuthorCode, given at or before position
// UpTo of the author's history (book.SetBookAuthor's OnlyIfAssignedBy;
// 0 for any position).
type Unassign struct {
	BookID string
	UpTo   int64
}

// dead reports whether book id was given to a life of the code that has
// ended.
func (v View) dead(id string) bool {
	p := v.Positions[id]
	if p == 0 {
		return v.Deleted
	}
	return p <= v.DeletedAt
}

// Empty reports whether the view holds nothing worth keeping.
func (v View) Empty() bool {
	return v.Author == nil && !v.Deleted && len(v.Books) == 0 && v.DeletedAt == 0
}

// Book is one entry of an author's list.
type Book struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// List returns the books ordered by title, then id: those given to the
// author's current life (a book given to a life that ended stays in Books
// until the reaction has unassigned it).
func (v View) List() []Book {
	out := make([]Book, 0, len(v.Books))
	for id, title := range v.Books {
		if v.Author != nil && v.dead(id) {
			continue
		}
		out = append(out, Book{ID: id, Title: title})
	}
	slices.SortFunc(out, func(a, b Book) int {
		return cmp.Or(cmp.Compare(a.Title, b.Title), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// ApplyAuthor folds an author event, at position in the code's history
// (0 when unknown), into the view. On deletion it returns the books to
// unassign (the reaction): those given to the life that ends, not those
// already given to a later one whose creation has not arrived yet.
func ApplyAuthor(v View, code string, ev author.Event, position int64) (View, []Unassign) {
	switch e := ev.(type) {
	case author.AuthorCreated:
		v.Author, v.Deleted = &Author{Code: code, FirstName: e.FirstName, LastName: e.LastName}, false
	case author.AuthorUpdated:
		v.Author = &Author{Code: code, FirstName: e.FirstName, LastName: e.LastName}
	case author.AuthorDeleted:
		prev := v.DeletedAt
		v.Author, v.Deleted = nil, true
		if position > 0 {
			v.DeletedAt = max(v.DeletedAt, position)
		}
		out := []Unassign{}
		for _, id := range sortedIDs(v.Books) {
			p := v.Positions[id]
			switch {
			case p == 0:
				// Unknown: the book belongs to the life that ends.
				// Up to the deletion all the same: by the time the
				// reaction reaches it, the book may have been given
				// to the next life (a position above the deletion).
				out = append(out, Unassign{BookID: id, UpTo: position})
			case position > 0 && prev < p && p <= position:
				// Given to the life that ends (a book given to an
				// earlier one was unassigned when that one ended, or
				// when it was linked).
				out = append(out, Unassign{BookID: id, UpTo: position})
			case position == 0 && p > prev:
				out = append(out, Unassign{BookID: id, UpTo: 0})
			}
		}
		return v, out
	}
	return v, nil
}

// ApplyLink folds a Link change into the view. A book linked to a life of
// the author that has ended is to be unassigned too: it is returned.
func ApplyLink(v View, l Link) (View, []Unassign) {
	switch l.Op {
	case OpLink:
		// Copies, never in place: the view passed in stays as it was.
		v.Books = with(v.Books, l.BookID, l.Title)
		if l.AuthorPosition > 0 {
			v.Positions = with(v.Positions, l.BookID, l.AuthorPosition)
		} else {
			v.Positions = without(v.Positions, l.BookID)
		}
		if v.dead(l.BookID) {
			// Up to the last deletion even for a book linked at an
			// unknown position: by the time the reaction reaches it,
			// the book may have been given to a later life.
			return v, []Unassign{{BookID: l.BookID, UpTo: v.DeletedAt}}
		}
	case OpUnlink:
		v.Books = without(v.Books, l.BookID)
		v.Positions = without(v.Positions, l.BookID)
	}
	return v, nil
}

// with returns a copy of m with k set to val.
func with[V any](m map[string]V, k string, val V) map[string]V {
	out := make(map[string]V, len(m)+1)
	for id, x := range m {
		out[id] = x
	}
	out[k] = val
	return out
}

// without returns m without k: m itself when it has no k, else a copy.
func without[V any](m map[string]V, k string) map[string]V {
	if _, ok := m[k]; !ok {
		return m
	}
	out := make(map[string]V, len(m))
	for id, x := range m {
		if id != k {
			out[id] = x
		}
	}
	return out
}

func sortedIDs(m map[string]string) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
