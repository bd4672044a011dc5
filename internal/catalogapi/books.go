package catalogapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/httpapi"
	"github.com/bookscatalog/catalog/internal/domain"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/domain/booksbyauthor"
)

// Books is the books resource.
type Books = httpapi.Resource[book.State, book.Command, book.Event]

// BookView is the JSON representation of a book.
type BookView struct {
	ID         string        `json:"id"`
	Title      string        `json:"title"`
	AuthorCode *string       `json:"authorCode"`
	Chapters   []ChapterView `json:"chapters"`
	Version    int64         `json:"version"`
}

// ChapterView is the JSON representation of a chapter.
type ChapterView struct {
	ID      int64  `json:"id"`
	Title   string `json:"title"`
	Content string `json:"content"`
}

// RenderBook returns the representation of s.
func RenderBook(s book.State) any {
	v := BookView{ID: s.ID, Title: s.Title, Chapters: make([]ChapterView, len(s.Chapters)), Version: s.Version}
	if s.AuthorCode != "" {
		code := s.AuthorCode
		v.AuthorCode = &code
	}
	for i, c := range s.Chapters {
		v.Chapters[i] = ChapterView(c)
	}
	return v
}

// ValidBookID checks the form of a book id.
func ValidBookID(id string) error {
	if rej := book.ValidateID("id", id); rej != nil {
		return rej
	}
	return nil
}

// AuthorChecker tells whether an author exists, so that a book is never
// given an unknown author, and the position of its last event, which tells
// its lives apart (httpapi.Check).
type AuthorChecker func(ctx context.Context, code string) (httpapi.Found, error)

// BooksOfAuthor reads the books-by-author read model.
type BooksOfAuthor func(code string) (booksbyauthor.View, error)

// optionalString is a JSON member that may be absent, null or a string.
type optionalString struct {
	Set   bool
	Value *string
}

func (o *optionalString) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// code returns the author code of an authorCode member: "" for absent or
// null (no author); an empty string is not a code.
func (o optionalString) code() (string, *httpapi.Problem) {
	if o.Value == nil {
		return "", nil
	}
	if rej := domain.ValidateSlug("authorCode", *o.Value); rej != nil {
		return "", httpapi.Rejected(rej)
	}
	return *o.Value, nil
}

type bookBody struct {
	ID         *string        `json:"id"`
	Title      *string        `json:"title"`
	AuthorCode optionalString `json:"authorCode"`
}

type chapterBody struct {
	Title   *string `json:"title"`
	Content *string `json:"content"`
}

// checkAuthor returns the author's position, or a 422 for an unknown or
// deleted author.
func checkAuthor(ctx context.Context, check AuthorChecker, code string) (int64, *httpapi.Problem) {
	found, err := check(ctx, code)
	switch {
	case errors.Is(err, eskafka.ErrRestoring), errors.Is(err, eskafka.ErrNotOwner), errors.Is(err, httpapi.ErrPeerUnavailable):
		return 0, httpapi.NewProblem(http.StatusServiceUnavailable, "cannot check author %s now: %v", httpapi.Quote(code), err)
	case err != nil:
		return 0, httpapi.NewProblem(http.StatusInternalServerError, "check author %s: %v", httpapi.Quote(code), err)
	case !found.Exists:
		p := httpapi.NewProblem(http.StatusUnprocessableEntity, "author %s does not exist", httpapi.Quote(code))
		p.Field, p.Code = "authorCode", domain.CodeUnknownReference
		return 0, p
	}
	return found.Position, nil
}

// CheckBookAuthor is the books resource's Precheck: a command that gives a
// book an author is refused (422) unless the author exists, for the book
// aggregate cannot see authors, and is sent with the position in the
// author's history at which it was seen (book.SetBookAuthor's
// AuthorPosition: the reaction to the author's deletion then leaves alone
// a book given to the author's next life). A position a writer sent is
// replaced. A malformed code is left to the domain.
func CheckBookAuthor(check AuthorChecker) func(context.Context, book.Command) (book.Command, *httpapi.Problem) {
	return func(ctx context.Context, cmd book.Command) (book.Command, *httpapi.Problem) {
		var code string
		switch c := cmd.(type) {
		case book.CreateBook:
			code = c.AuthorCode
		case book.SetBookAuthor:
			code = c.AuthorCode
		default:
			return cmd, nil
		}
		if code == "" || domain.ValidateSlug("authorCode", code) != nil {
			// No author (the domain refuses a position without
			// one), or a code the domain refuses.
			return cmd, nil
		}
		pos, p := checkAuthor(ctx, check, code)
		if p != nil {
			return nil, p
		}
		switch c := cmd.(type) {
		case book.CreateBook:
			c.AuthorPosition = pos
			return c, nil
		case book.SetBookAuthor:
			c.AuthorPosition = pos
			return c, nil
		}
		return cmd, nil
	}
}

// BookWrites are the books' write endpoints: POST /books, PUT and DELETE
// /books/{id}, PUT /books/{id}/author, POST /books/{id}/chapters and
// DELETE /books/{id}/chapters/{chapterId}.
func BookWrites() []httpapi.Write[book.State, book.Command, book.Event] {
	return []httpapi.Write[book.State, book.Command, book.Event]{
		{Method: http.MethodPost, Status: http.StatusCreated, Command: createBook},
		{Method: http.MethodPut, Path: "/{key}", Status: http.StatusOK, Command: func(r *httpapi.WriteRequest) (book.Command, *httpapi.Problem) {
			var body struct {
				Title *string `json:"title"`
			}
			if p := r.Decode(&body); p != nil {
				return nil, p
			}
			if p := httpapi.Required("title", body.Title); p != nil {
				return nil, p
			}
			return book.UpdateBook{ID: r.Key, Title: *body.Title}, nil
		}},
		{Method: http.MethodPut, Path: "/{key}/author", Status: http.StatusOK, Command: func(r *httpapi.WriteRequest) (book.Command, *httpapi.Problem) {
			var body struct {
				AuthorCode optionalString `json:"authorCode"`
			}
			if p := r.Decode(&body); p != nil {
				return nil, p
			}
			if !body.AuthorCode.Set {
				p := httpapi.NewProblem(http.StatusUnprocessableEntity, `field "authorCode" is required (a code, or null to clear the author)`)
				p.Field = "authorCode"
				return nil, p
			}
			code, p := body.AuthorCode.code()
			if p != nil {
				return nil, p
			}
			return book.SetBookAuthor{ID: r.Key, AuthorCode: code}, nil
		}},
		{Method: http.MethodPost, Path: "/{key}/chapters", Status: http.StatusCreated, Answer: addedChapter, Command: func(r *httpapi.WriteRequest) (book.Command, *httpapi.Problem) {
			var body chapterBody
			if p := r.Decode(&body); p != nil {
				return nil, p
			}
			if p := httpapi.Required("title", body.Title, "content", body.Content); p != nil {
				return nil, p
			}
			return book.AddChapter{ID: r.Key, Title: *body.Title, Content: *body.Content}, nil
		}},
		{Method: http.MethodDelete, Path: "/{key}/chapters/{chapterId}", Status: http.StatusNoContent, Command: func(r *httpapi.WriteRequest) (book.Command, *httpapi.Problem) {
			cid, err := strconv.ParseInt(r.PathValue("chapterId"), 10, 64)
			if err != nil || cid < 1 {
				p := httpapi.NewProblem(http.StatusBadRequest, "chapterId must be a positive integer, not %s", httpapi.Quote(r.PathValue("chapterId")))
				p.Field = "chapterId"
				return nil, p
			}
			return book.RemoveChapter{ID: r.Key, ChapterID: cid}, nil
		}},
		{Method: http.MethodDelete, Path: "/{key}", Status: http.StatusNoContent, Command: func(r *httpapi.WriteRequest) (book.Command, *httpapi.Problem) {
			return book.RemoveBook{ID: r.Key}, nil
		}},
	}
}

// createBook is POST /books: the id is the body's, or made up (from the
// Idempotency-Key, if any, so that a retry names the same book).
func createBook(r *httpapi.WriteRequest) (book.Command, *httpapi.Problem) {
	var body bookBody
	if p := r.Decode(&body); p != nil {
		return nil, p
	}
	if p := httpapi.Required("title", body.Title); p != nil {
		return nil, p
	}
	var id string
	if body.ID != nil {
		id = *body.ID
		if rej := book.ValidateID("id", id); rej != nil {
			return nil, httpapi.Rejected(rej)
		}
	} else {
		id = r.NewID("book-id")
	}
	code, p := body.AuthorCode.code()
	if p != nil {
		return nil, p
	}
	return book.CreateBook{ID: id, Title: *body.Title, AuthorCode: code}, nil
}

// addedChapter answers POST /books/{id}/chapters with the chapter added.
func addedChapter(result *eskafka.Result[book.State, book.Event]) any {
	var added ChapterView
	for _, e := range result.Events {
		if c, ok := e.(book.ChapterAdded); ok {
			added = ChapterView{ID: c.ChapterID, Title: c.Title, Content: c.Content}
		}
	}
	return added
}

// BooksOfAuthorRead is GET /authors/{code}/books, from the books-by-author
// read model (booksOf), whose partitions own places.
func BooksOfAuthorRead(booksOf BooksOfAuthor, own httpapi.Ownership) httpapi.Read {
	return httpapi.Read{Ownership: own, Get: func(_ context.Context, code string) (any, error) {
		v, err := booksOf(code)
		if err == nil && v.Author == nil {
			err = eskafka.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		return AuthorBooksView{Author: *v.Author, Books: v.List()}, nil
	}}
}

// AuthorBooksView is the answer to "which books does this author have?".
type AuthorBooksView struct {
	Author booksbyauthor.Author `json:"author"`
	Books  []booksbyauthor.Book `json:"books"`
}
