// Package catalogui is the catalog's part of its web page: the
// descriptions of its aggregates (authors and books) that the generic page
// of package web draws its navigation, views, timelines and live panel
// from, and an extension with the views that are the catalog's own (a
// book and its chapters, an author's books).
package catalogui

import (
	"embed"
	"io/fs"

	"github.com/bookscatalog/catalog/httpapi"
	"github.com/bookscatalog/catalog/internal/catalogapi"
	"github.com/bookscatalog/catalog/internal/web"
)

// Title names the application on its page.
const Title = "Books catalog"

// TokenHint tells a user asked for a token where to get one.
const TokenHint = "An operator gives you one (catalog tokens new writer NAME, or your identity provider)."

//go:embed ext
var ext embed.FS

// Extension returns the catalog's additions to the page (web.Config's
// Extension): its script and the templates of its views.
func Extension() fs.FS {
	sub, err := fs.Sub(ext, "ext")
	if err != nil {
		panic(err) // the directory is embedded: cannot happen
	}
	return sub
}

// named returns a with the names of the HTTP resource r that serves the
// aggregate: its plural (the collection's path), its singular and its key
// (the path's key, also the representation's field that holds it). They
// are declared once, with the resource; the page's title is the plural's
// by default.
func named[S, C, E any](r *httpapi.Resource[S, C, E], a web.Aggregate) web.Aggregate {
	a.Name, a.Singular, a.Key = r.Aggregate.Name, r.Singular, r.KeyName
	return a
}

// Authors describes to the page the authors the HTTP resource r serves,
// named as r names them. The service sets its Topic and Decode.
func Authors(r *catalogapi.Authors) web.Aggregate {
	return named(r, web.Aggregate{
		Label: []string{"{firstName} {lastName}"},
		Fields: []web.Field{
			{Name: "code", Label: "Code", Hint: "A short unique slug, such as jane-austen.", Create: true},
			{Name: "firstName", Label: "First name", Create: true, Update: true},
			{Name: "lastName", Label: "Last name", Create: true, Update: true},
		},
		Forms: web.Forms{Create: true, Update: true, UpdateLabel: "Save names",
			Delete: true, DeleteWarning: "Their books stay, without an author."},
		Events: []web.EventLabel{
			{Type: "AuthorCreated", Describe: []string{"Created as {firstName} {lastName}"}, Summary: []string{"{firstName} {lastName}"}},
			{Type: "AuthorUpdated", Describe: []string{"Names changed to {firstName} {lastName}"}, Summary: []string{"{firstName} {lastName}"}},
			{Type: "AuthorDeleted", Describe: []string{"Deleted"}},
		},
	})
}

// Books describes to the page the books the HTTP resource r serves, named
// as r names them; their views are the extension's. The service sets its
// Topic and Decode.
func Books(r *catalogapi.Books) web.Aggregate {
	return named(r, web.Aggregate{
		ShortKey: true,
		Label:    []string{"{title}"},
		Fields: []web.Field{
			{Name: "title", Label: "Title", Create: true, Update: true},
			{Name: "authorCode", Label: "Author code", Optional: true, Create: true},
		},
		Forms: web.Forms{Create: true, Update: true, UpdateLabel: "Rename",
			Delete: true, DeleteVerb: "Remove", Deleted: "removed"},
		Events: []web.EventLabel{
			{Type: "BookCreated", Describe: []string{"Created as “{title}”"}, Summary: []string{"“{title}”"}},
			{Type: "BookUpdated", Describe: []string{"Renamed to “{title}”"}, Summary: []string{"“{title}”"}},
			{Type: "BookAuthorSet", Describe: []string{"Author set to {authorCode}", "Author cleared"},
				Summary: []string{"author {authorCode}", "no author"}},
			{Type: "ChapterAdded", Describe: []string{"Chapter {chapterId} added: “{title}”"}, Summary: []string{"chapter {chapterId}: {title}"}},
			{Type: "ChapterRemoved", Describe: []string{"Chapter {chapterId} removed"}, Summary: []string{"chapter {chapterId}"}},
			{Type: "BookRemoved", Describe: []string{"Removed"}},
		},
	})
}
