package catalogapi

import (
	"net/http"

	"github.com/bookscatalog/catalog/httpapi"
	"github.com/bookscatalog/catalog/internal/domain"
	"github.com/bookscatalog/catalog/internal/domain/author"
)

// Authors is the authors resource.
type Authors = httpapi.Resource[author.State, author.Command, author.Event]

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
func ValidAuthorCode(code string) error {
	if rej := domain.ValidateSlug("code", code); rej != nil {
		return rej
	}
	return nil
}

type authorBody struct {
	Code      *string `json:"code"`
	FirstName *string `json:"firstName"`
	LastName  *string `json:"lastName"`
}

// AuthorWrites are the authors' write endpoints: POST /authors, PUT and
// DELETE /authors/{code}.
func AuthorWrites() []httpapi.Write[author.State, author.Command, author.Event] {
	return []httpapi.Write[author.State, author.Command, author.Event]{
		{Method: http.MethodPost, Status: http.StatusCreated, Command: func(r *httpapi.WriteRequest) (author.Command, *httpapi.Problem) {
			var b authorBody
			if p := r.Decode(&b); p != nil {
				return nil, p
			}
			if p := httpapi.Required("code", b.Code, "firstName", b.FirstName, "lastName", b.LastName); p != nil {
				return nil, p
			}
			return author.CreateAuthor{Code: *b.Code, FirstName: *b.FirstName, LastName: *b.LastName}, nil
		}},
		{Method: http.MethodPut, Path: "/{key}", Status: http.StatusOK, Command: func(r *httpapi.WriteRequest) (author.Command, *httpapi.Problem) {
			var b authorBody
			if p := r.Decode(&b); p != nil {
				return nil, p
			}
			if b.Code != nil && *b.Code != r.Key {
				p := httpapi.NewProblem(http.StatusUnprocessableEntity, "code in the body (%s) differs from the path (%s); an author's code cannot change", httpapi.Quote(*b.Code), httpapi.Quote(r.Key))
				p.Field = "code"
				return nil, p
			}
			if p := httpapi.Required("firstName", b.FirstName, "lastName", b.LastName); p != nil {
				return nil, p
			}
			return author.UpdateAuthor{Code: r.Key, FirstName: *b.FirstName, LastName: *b.LastName}, nil
		}},
		{Method: http.MethodDelete, Path: "/{key}", Status: http.StatusNoContent, Command: func(r *httpapi.WriteRequest) (author.Command, *httpapi.Problem) {
			return author.DeleteAuthor{Code: r.Key}, nil
		}},
	}
}
