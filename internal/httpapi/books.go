package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/bookscatalog/catalog/internal/domain"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/domain/booksbyauthor"
	"github.com/bookscatalog/catalog/internal/eskafka"
	"github.com/bookscatalog/catalog/internal/ids"
)

// Books is the books resource.
type Books = Resource[book.State, book.Command, book.Event]

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
func ValidBookID(id string) *domain.Rejection { return book.ValidateID("id", id) }

// AuthorChecker tells whether an author exists, so that a book is never
// given an unknown author.
type AuthorChecker func(ctx context.Context, code string) (bool, error)

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
func (o optionalString) code() (string, *Problem) {
	if o.Value == nil {
		return "", nil
	}
	if rej := domain.ValidateSlug("authorCode", *o.Value); rej != nil {
		return "", rejectionProblem(rejection(rej), "")
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

// checkAuthor returns a 422 for an unknown or deleted author.
func checkAuthor(ctx context.Context, exists AuthorChecker, code string) *Problem {
	if rej := domain.ValidateSlug("authorCode", code); rej != nil {
		return rejectionProblem(rejection(rej), "")
	}
	ok, err := exists(ctx, code)
	switch {
	case errors.Is(err, eskafka.ErrRestoring), errors.Is(err, eskafka.ErrNotOwner), errors.Is(err, ErrPeerUnavailable):
		return problem(http.StatusServiceUnavailable, "cannot check author %s now: %v", quoted(code), err)
	case err != nil:
		return problem(http.StatusInternalServerError, "check author %s: %v", quoted(code), err)
	case !ok:
		p := problem(http.StatusUnprocessableEntity, "author %s does not exist", quoted(code))
		p.Field, p.Code = "authorCode", domain.CodeUnknownReference
		return p
	}
	return nil
}

// authorOfCommand returns the author a command gives a book, if any.
func authorOfCommand(cmd book.Command) string {
	switch c := cmd.(type) {
	case book.CreateBook:
		return c.AuthorCode
	case book.SetBookAuthor:
		return c.AuthorCode
	}
	return ""
}

// CheckBookAuthor is the books resource's Precheck: a command that gives a
// book an author is refused (422) unless the author exists, for the book
// aggregate cannot see authors. A malformed code is left to the domain.
func CheckBookAuthor(exists AuthorChecker) func(context.Context, book.Command) *Problem {
	return func(ctx context.Context, cmd book.Command) *Problem {
		code := authorOfCommand(cmd)
		if code == "" || domain.ValidateSlug("authorCode", code) != nil {
			return nil
		}
		return checkAuthor(ctx, exists, code)
	}
}

func routeBooks(mux *http.ServeMux, b *Books) {
	mux.HandleFunc("POST /books", handle(func(w http.ResponseWriter, r *http.Request) *Problem {
		var body bookBody
		if p := decodeBody(w, r, &body); p != nil {
			return p
		}
		if p := required("title", body.Title); p != nil {
			return p
		}
		var id string
		switch {
		case body.ID != nil:
			id = *body.ID
			if rej := book.ValidateID("id", id); rej != nil {
				return rejectionProblem(rejection(rej), "")
			}
		case r.Header.Get("Idempotency-Key") != "":
			// A retry must name the same book to be recognised.
			id = ids.FromName(append([]string{"book-id", r.Header.Get("Idempotency-Key")}, idempotencyScope(r)...)...)
		default:
			id = ids.New()
		}
		code, p := body.AuthorCode.code()
		if p != nil {
			return p
		}
		cmd := book.CreateBook{ID: id, Title: *body.Title, AuthorCode: code}
		result, p := b.execute(w, r, cmd)
		if p != nil {
			return p
		}
		w.Header().Set("Location", "/books/"+id)
		b.etag(w, result.State)
		writeJSON(w, http.StatusCreated, RenderBook(result.State))
		return nil
	}))
	mux.HandleFunc("PUT /books/{id}", handle(func(w http.ResponseWriter, r *http.Request) *Problem {
		id, p := b.pathKey(r, "id")
		if p != nil {
			return p
		}
		var body struct {
			Title *string `json:"title"`
		}
		if p := decodeBody(w, r, &body); p != nil {
			return p
		}
		if p := required("title", body.Title); p != nil {
			return p
		}
		return b.respond(w, r, http.StatusOK, book.UpdateBook{ID: id, Title: *body.Title})
	}))
	mux.HandleFunc("PUT /books/{id}/author", handle(func(w http.ResponseWriter, r *http.Request) *Problem {
		id, p := b.pathKey(r, "id")
		if p != nil {
			return p
		}
		var body struct {
			AuthorCode optionalString `json:"authorCode"`
		}
		if p := decodeBody(w, r, &body); p != nil {
			return p
		}
		if !body.AuthorCode.Set {
			p := problem(http.StatusUnprocessableEntity, `field "authorCode" is required (a code, or null to clear the author)`)
			p.Field = "authorCode"
			return p
		}
		code, p := body.AuthorCode.code()
		if p != nil {
			return p
		}
		return b.respond(w, r, http.StatusOK, book.SetBookAuthor{ID: id, AuthorCode: code})
	}))
	mux.HandleFunc("POST /books/{id}/chapters", handle(func(w http.ResponseWriter, r *http.Request) *Problem {
		id, p := b.pathKey(r, "id")
		if p != nil {
			return p
		}
		var body chapterBody
		if p := decodeBody(w, r, &body); p != nil {
			return p
		}
		if p := required("title", body.Title, "content", body.Content); p != nil {
			return p
		}
		result, p := b.execute(w, r, book.AddChapter{ID: id, Title: *body.Title, Content: *body.Content})
		if p != nil {
			return p
		}
		var added ChapterView
		for _, e := range result.Events {
			if c, ok := e.(book.ChapterAdded); ok {
				added = ChapterView{ID: c.ChapterID, Title: c.Title, Content: c.Content}
			}
		}
		b.etag(w, result.State)
		writeJSON(w, http.StatusCreated, added)
		return nil
	}))
	mux.HandleFunc("DELETE /books/{id}/chapters/{chapterId}", handle(func(w http.ResponseWriter, r *http.Request) *Problem {
		id, p := b.pathKey(r, "id")
		if p != nil {
			return p
		}
		cid, err := strconv.ParseInt(r.PathValue("chapterId"), 10, 64)
		if err != nil || cid < 1 {
			p := problem(http.StatusBadRequest, "chapterId must be a positive integer, not %s", quoted(r.PathValue("chapterId")))
			p.Field = "chapterId"
			return p
		}
		return b.respond(w, r, http.StatusNoContent, book.RemoveChapter{ID: id, ChapterID: cid})
	}))
	mux.HandleFunc("DELETE /books/{id}", handle(func(w http.ResponseWriter, r *http.Request) *Problem {
		id, p := b.pathKey(r, "id")
		if p != nil {
			return p
		}
		return b.respond(w, r, http.StatusNoContent, book.RemoveBook{ID: id})
	}))
	mux.HandleFunc("GET /books/{id}", b.getOne("id"))
	mux.HandleFunc("GET /books", b.list)
	mux.HandleFunc("POST /books/commands", b.postCommand)
	// One pattern for /books/commands/{msgId} and /books/{id}/history,
	// which overlap; "history" is never a msgId.
	mux.HandleFunc("GET /books/{id}/{sub}", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.PathValue("sub") == "history":
			if id, p := b.pathKey(r, "id"); p != nil {
				writeProblem(w, p)
			} else {
				b.history(w, r, id)
			}
		case r.PathValue("id") == "commands":
			b.commandOutcome(w, r, r.PathValue("sub"))
		default:
			unmatched(mux)(w, r)
		}
	})
}

// authorBooks serves GET /authors/{code}/books from the read model, or
// from the instance that owns the code.
func authorBooks(booksOf BooksOfAuthor, own Ownership, peers *Peers) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		code := r.PathValue("code")
		if rej := ValidAuthorCode(code); rej != nil {
			p := problem(http.StatusBadRequest, "malformed code in path: %s", rej.Message)
			p.Field = "code"
			writeProblem(w, p)
			return
		}
		v, err := booksOf(code)
		if errors.Is(err, eskafka.ErrNotOwner) && peers.forward(w, r, own, code) {
			return
		}
		if err == nil && v.Author == nil {
			err = eskafka.ErrNotFound
		}
		if err != nil {
			writeProblem(w, readProblem(w, err, "authors", code))
			return
		}
		writeJSON(w, http.StatusOK, AuthorBooksView{Author: *v.Author, Books: v.List()})
	}
}

// AuthorBooksView is the answer to "which books does this author have?".
type AuthorBooksView struct {
	Author booksbyauthor.Author `json:"author"`
	Books  []booksbyauthor.Book `json:"books"`
}
