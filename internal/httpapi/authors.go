package httpapi

import (
	"net/http"

	"github.com/bookscatalog/catalog/internal/domain"
	"github.com/bookscatalog/catalog/internal/domain/author"
)

// Authors is the authors resource.
type Authors = Resource[author.State, author.Command, author.Event]

// AuthorView is the JSON representation of an author.
type AuthorView struct {
	Code      string `json:"code"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Version   int64  `json:"version"`
}

// RenderAuthor returns the representation of s.
func RenderAuthor(s author.State) any {
	return AuthorView{Code: s.Code, FirstName: s.FirstName, LastName: s.LastName, Version: s.Version}
}

// ValidAuthorCode checks the form of an author code.
func ValidAuthorCode(code string) *domain.Rejection { return domain.ValidateSlug("code", code) }

type authorBody struct {
	Code      *string `json:"code"`
	FirstName *string `json:"firstName"`
	LastName  *string `json:"lastName"`
}

func routeAuthors(mux *http.ServeMux, a *Authors, booksOf http.HandlerFunc) {
	mux.HandleFunc("POST /authors", handle(func(w http.ResponseWriter, r *http.Request) *Problem {
		var b authorBody
		if p := decodeBody(w, r, &b); p != nil {
			return p
		}
		if p := required("code", b.Code, "firstName", b.FirstName, "lastName", b.LastName); p != nil {
			return p
		}
		result, p := a.execute(w, r, author.CreateAuthor{Code: *b.Code, FirstName: *b.FirstName, LastName: *b.LastName})
		if p != nil {
			return p
		}
		w.Header().Set("Location", "/authors/"+result.State.Code)
		a.etag(w, result.State)
		writeJSON(w, http.StatusCreated, RenderAuthor(result.State))
		return nil
	}))
	mux.HandleFunc("PUT /authors/{code}", handle(func(w http.ResponseWriter, r *http.Request) *Problem {
		code, p := a.pathKey(r, "code")
		if p != nil {
			return p
		}
		var b authorBody
		if p := decodeBody(w, r, &b); p != nil {
			return p
		}
		if b.Code != nil && *b.Code != code {
			p := problem(http.StatusUnprocessableEntity, "code in the body (%s) differs from the path (%s); an author's code cannot change", quoted(*b.Code), quoted(code))
			p.Field = "code"
			return p
		}
		if p := required("firstName", b.FirstName, "lastName", b.LastName); p != nil {
			return p
		}
		result, p := a.execute(w, r, author.UpdateAuthor{Code: code, FirstName: *b.FirstName, LastName: *b.LastName})
		if p != nil {
			return p
		}
		a.etag(w, result.State)
		writeJSON(w, http.StatusOK, RenderAuthor(result.State))
		return nil
	}))
	mux.HandleFunc("DELETE /authors/{code}", handle(func(w http.ResponseWriter, r *http.Request) *Problem {
		code, p := a.pathKey(r, "code")
		if p != nil {
			return p
		}
		if _, p := a.execute(w, r, author.DeleteAuthor{Code: code}); p != nil {
			return p
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	mux.HandleFunc("GET /authors/{code}", a.getOne("code"))
	mux.HandleFunc("GET /authors", a.list)
	mux.HandleFunc("POST /authors/commands", a.postCommand)
	// One pattern for /authors/commands/{msgId}, /authors/{code}/books and
	// /authors/{code}/history, which overlap; "books" and "history" are
	// never msgIds.
	mux.HandleFunc("GET /authors/{code}/{sub}", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.PathValue("sub") == "books":
			booksOf(w, r)
		case r.PathValue("sub") == "history":
			if code, p := a.pathKey(r, "code"); p != nil {
				writeProblem(w, p)
			} else {
				a.history(w, r, code)
			}
		case r.PathValue("code") == "commands":
			a.commandOutcome(w, r, r.PathValue("sub"))
		default:
			unmatched(mux)(w, r)
		}
	})
}

// handle adapts a handler that returns its problem, if any.
func handle(h func(http.ResponseWriter, *http.Request) *Problem) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p := h(w, r); p != nil {
			writeProblem(w, p)
		}
	}
}

// required returns a 422 naming the first missing field of name/value pairs.
func required(pairs ...any) *Problem {
	for i := 0; i+1 < len(pairs); i += 2 {
		if v, ok := pairs[i+1].(*string); ok && v == nil {
			p := problem(http.StatusUnprocessableEntity, "field %q is required", pairs[i])
			p.Field = pairs[i].(string)
			return p
		}
	}
	return nil
}
