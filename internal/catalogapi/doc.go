// Package catalogapi is the catalog's part of its HTTP API: how authors and
// books are shown (AuthorView, BookView), the bodies of their write
// endpoints (AuthorWrites, BookWrites), the check that a book's author
// exists (CheckBookAuthor) and the books of an author
// (BooksOfAuthorRead). The generic resource layer, package httpapi, serves
// them as it serves any aggregate; the service registers them
// (internal/service).
package catalogapi
