package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
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
	case errors.Is(err, eskafka.ErrRestoring), errors.Is(err, eskafka.ErrNotOwner):
		return problem(http.StatusServiceUnavailable, "cannot check author %q now: %v", code, err)
	case err != nil:
		return problem(http.StatusInternalServerError, "check author %q: %v", code, err)
	case !ok:
		p := problem(http.StatusUnprocessableEntity, "author %q does not exist", code)
		p.Field, p.Code = "authorCode", domain.CodeUnknownReference
		return p
	}
	return nil
}

func routeBooks(mux *http.ServeMux, b *Books, authorExists AuthorChecker) {
	mux.HandleFunc("POST /books", func(w http.ResponseWriter, r *http.Request) {
		var body bookBody
		if p := decodeBody(w, r, &body); p != nil {
			writeProblem(w, p)
			return
		}
		if p := required("title", body.Title); p != nil {
			writeProblem(w, p)
			return
		}
		var id string
		switch {
		case body.ID != nil:
			id = *body.ID
			if rej := book.ValidateID("id", id); rej != nil {
				writeProblem(w, rejectionProblem(rejection(rej), ""))
				return
			}
		case r.Header.Get("Idempotency-Key") != "":
			// A retry must name the same book to be recognised.
			id = ids.FromName("book-id", r.Header.Get("Idempotency-Key"))
		default:
			id = ids.New()
		}
		cmd := book.CreateBook{ID: id, Title: *body.Title}
		if body.AuthorCode.Value != nil {
			if p := checkAuthor(r.Context(), authorExists, *body.AuthorCode.Value); p != nil {
				writeProblem(w, p)
				return
			}
			cmd.AuthorCode = *body.AuthorCode.Value
		}
		result, p := b.execute(r, cmd)
		if p != nil {
			writeProblem(w, p)
			return
		}
		w.Header().Set("Location", "/books/"+id)
		b.etag(w, result.State)
		writeJSON(w, http.StatusCreated, RenderBook(result.State))
	})
	mux.HandleFunc("PUT /books/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, p := b.pathKey(r, "id")
		if p != nil {
			writeProblem(w, p)
			return
		}
		var body struct {
			Title *string `json:"title"`
		}
		if p := decodeBody(w, r, &body); p != nil {
			writeProblem(w, p)
			return
		}
		if p := required("title", body.Title); p != nil {
			writeProblem(w, p)
			return
		}
		result, p := b.execute(r, book.UpdateBook{ID: id, Title: *body.Title})
		if p != nil {
			writeProblem(w, p)
			return
		}
		b.etag(w, result.State)
		writeJSON(w, http.StatusOK, RenderBook(result.State))
	})
	mux.HandleFunc("PUT /books/{id}/author", func(w http.ResponseWriter, r *http.Request) {
		id, p := b.pathKey(r, "id")
		if p != nil {
			writeProblem(w, p)
			return
		}
		var body struct {
			AuthorCode optionalString `json:"authorCode"`
		}
		if p := decodeBody(w, r, &body); p != nil {
			writeProblem(w, p)
			return
		}
		if !body.AuthorCode.Set {
			p := problem(http.StatusUnprocessableEntity, `field "authorCode" is required (a code, or null to clear the author)`)
			p.Field = "authorCode"
			writeProblem(w, p)
			return
		}
		cmd := book.SetBookAuthor{ID: id}
		if body.AuthorCode.Value != nil {
			if p := checkAuthor(r.Context(), authorExists, *body.AuthorCode.Value); p != nil {
				writeProblem(w, p)
				return
			}
			cmd.AuthorCode = *body.AuthorCode.Value
		}
		result, p := b.execute(r, cmd)
		if p != nil {
			writeProblem(w, p)
			return
		}
		b.etag(w, result.State)
		writeJSON(w, http.StatusOK, RenderBook(result.State))
	})
	mux.HandleFunc("POST /books/{id}/chapters", func(w http.ResponseWriter, r *http.Request) {
		id, p := b.pathKey(r, "id")
		if p != nil {
			writeProblem(w, p)
			return
		}
		var body chapterBody
		if p := decodeBody(w, r, &body); p != nil {
			writeProblem(w, p)
			return
		}
		if p := required("title", body.Title, "content", body.Content); p != nil {
			writeProblem(w, p)
			return
		}
		result, p := b.execute(r, book.AddChapter{ID: id, Title: *body.Title, Content: *body.Content})
		if p != nil {
			writeProblem(w, p)
			return
		}
		var added ChapterView
		for _, e := range result.Events {
			if c, ok := e.(book.ChapterAdded); ok {
				added = ChapterView{ID: c.ChapterID, Title: c.Title, Content: c.Content}
			}
		}
		b.etag(w, result.State)
		writeJSON(w, http.StatusCreated, added)
	})
	mux.HandleFunc("DELETE /books/{id}/chapters/{chapterId}", func(w http.ResponseWriter, r *http.Request) {
		id, p := b.pathKey(r, "id")
		if p != nil {
			writeProblem(w, p)
			return
		}
		cid, err := strconv.ParseInt(r.PathValue("chapterId"), 10, 64)
		if err != nil || cid < 1 {
			p := problem(http.StatusBadRequest, "chapterId must be a positive integer, not %q", r.PathValue("chapterId"))
			p.Field = "chapterId"
			writeProblem(w, p)
			return
		}
		if _, p := b.execute(r, book.RemoveChapter{ID: id, ChapterID: cid}); p != nil {
			writeProblem(w, p)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /books/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, p := b.pathKey(r, "id")
		if p != nil {
			writeProblem(w, p)
			return
		}
		if _, p := b.execute(r, book.RemoveBook{ID: id}); p != nil {
			writeProblem(w, p)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /books/{id}", b.getOne("id"))
	mux.HandleFunc("GET /books", b.list)
	mux.HandleFunc("POST /books/commands", func(w http.ResponseWriter, r *http.Request) {
		if p := checkCommandAuthor(w, r, b, authorExists); p != nil {
			writeProblem(w, p)
			return
		}
		b.postCommand(w, r)
	})
	mux.HandleFunc("GET /books/commands/{msgId}", b.getCommand)

}

// checkCommandAuthor answers 422, as POST /books and PUT /books/{id}/author
// do, when a command sent to POST /books/commands gives a book an author
// that does not exist (the book aggregate cannot see authors). It decodes
// the body as postCommand does, and puts it back for postCommand, which
// answers every other problem of the body.
func checkCommandAuthor(w http.ResponseWriter, r *http.Request, b *Books, exists AuthorChecker) *Problem {
	if checkContentType(r) != nil {
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return jsonProblem(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var raw map[string]json.RawMessage
	var typ string
	if json.Unmarshal(body, &raw) != nil || json.Unmarshal(raw["type"], &typ) != nil {
		return nil
	}
	ptr, ok := b.Commands.New(typ)
	if !ok {
		return nil
	}
	delete(raw, "type")
	norm, _ := json.Marshal(raw)
	dec := json.NewDecoder(bytes.NewReader(norm))
	dec.DisallowUnknownFields()
	if dec.Decode(ptr) != nil {
		return nil
	}
	cmd, _ := derefAs[book.Command](ptr)
	var code string
	switch c := cmd.(type) {
	case book.CreateBook:
		code = c.AuthorCode
	case book.SetBookAuthor:
		code = c.AuthorCode
	}
	if code == "" || domain.ValidateSlug("authorCode", code) != nil {
		return nil // no author, or an invalid code the domain rejects
	}
	return checkAuthor(r.Context(), exists, code)
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
