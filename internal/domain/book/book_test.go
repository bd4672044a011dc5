package book_test

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/es/estest"
	"github.com/bookscatalog/catalog/internal/domain"
	"github.com/bookscatalog/catalog/internal/domain/book"
)

type tcase = estest.Case[book.State, book.Command, book.Event]

var agg = estest.Aggregate[book.State, book.Command, book.Event]{Decide: book.Decide, Evolve: book.Evolve}

const (
	id    = "3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f"
	other = "00000000-0000-0000-0000-000000000000"
)

func created() book.Event { return book.BookCreated{ID: id, Title: "Emma"} }

func added(chapterID int64, title string) book.Event {
	return book.ChapterAdded{ID: id, ChapterID: chapterID, Title: title, Content: "text of " + title}
}

func removed(chapterID int64) book.Event { return book.ChapterRemoved{ID: id, ChapterID: chapterID} }

func ch(chapterID int64, title string) book.Chapter {
	return book.Chapter{ID: chapterID, Title: title, Content: "text of " + title}
}

func wantState(want book.State) func(*testing.T, book.State) {
	return func(t *testing.T, s book.State) {
		t.Helper()
		if !reflect.DeepEqual(s, want) {
			t.Fatalf("state = %+v, want %+v", s, want)
		}
	}
}

func wantVersion(v int64) func(*testing.T, book.State) {
	return func(t *testing.T, s book.State) {
		t.Helper()
		if book.Version(s) != v {
			t.Fatalf("version = %d, want %d (state %+v)", book.Version(s), v, s)
		}
	}
}

func TestCreateBook(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "new without author", When: book.CreateBook{ID: id, Title: "Emma"},
			Want:  []book.Event{book.BookCreated{ID: id, Title: "Emma"}},
			Check: wantState(book.State{ID: id, Title: "Emma", Chapters: []book.Chapter{}, NextChapterID: 1, Version: 1})},
		{Name: "new with author", When: book.CreateBook{ID: id, Title: "Emma", AuthorCode: "jane-austen"},
			Want:  []book.Event{book.BookCreated{ID: id, Title: "Emma"}, book.BookAuthorSet{ID: id, AuthorCode: "jane-austen"}},
			Check: wantState(book.State{ID: id, Title: "Emma", AuthorCode: "jane-austen", Chapters: []book.Chapter{}, NextChapterID: 1, Version: 2})},
		{Name: "exists", Given: []book.Event{created()}, When: book.CreateBook{ID: id, Title: "Emma"},
			WantCode: domain.CodeAlreadyExists},
		{Name: "exists with chapters", Given: []book.Event{created(), added(1, "One")}, When: book.CreateBook{ID: id, Title: "Other"},
			WantCode: domain.CodeAlreadyExists},
		{Name: "recreate after removal", Given: []book.Event{created(), added(1, "One"), removed(1), book.BookRemoved{ID: id}},
			When:  book.CreateBook{ID: id, Title: "Persuasion"},
			Want:  []book.Event{book.BookCreated{ID: id, Title: "Persuasion"}},
			Check: wantState(book.State{ID: id, Title: "Persuasion", Chapters: []book.Chapter{}, NextChapterID: 1, Version: 1})},
		{Name: "blank title", When: book.CreateBook{ID: id, Title: " \t"}, WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "empty title", When: book.CreateBook{ID: id}, WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "title too long", When: book.CreateBook{ID: id, Title: strings.Repeat("x", domain.MaxNameLen+1)},
			WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "invalid author code", When: book.CreateBook{ID: id, Title: "Emma", AuthorCode: "Jane Austen"},
			WantCode: domain.CodeInvalid, WantField: "authorCode"},
		{Name: "author code too long", When: book.CreateBook{ID: id, Title: "Emma", AuthorCode: strings.Repeat("a", domain.MaxSlugLen+1)},
			WantCode: domain.CodeInvalid, WantField: "authorCode"},
		{Name: "empty id", When: book.CreateBook{Title: "Emma"}, WantCode: domain.CodeInvalid, WantField: "id"},
		{Name: "upper-case id", When: book.CreateBook{ID: strings.ToUpper(id), Title: "Emma"}, WantCode: domain.CodeInvalid, WantField: "id"},
		{Name: "id without hyphens", When: book.CreateBook{ID: strings.ReplaceAll(id, "-", ""), Title: "Emma"},
			WantCode: domain.CodeInvalid, WantField: "id"},
		{Name: "id in braces", When: book.CreateBook{ID: "{" + id + "}", Title: "Emma"}, WantCode: domain.CodeInvalid, WantField: "id"},
		{Name: "invalid field before exists", Given: []book.Event{created()}, When: book.CreateBook{ID: id, Title: ""},
			WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "NUL in title", When: book.CreateBook{ID: id, Title: "Em\x00ma"}, WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "line feed in title", When: book.CreateBook{ID: id, Title: "Em\nma"}, WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "tab in title", When: book.CreateBook{ID: id, Title: "Em\tma"}, WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "DEL in title", When: book.CreateBook{ID: id, Title: "Emma\x7f"}, WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "C1 control in title", When: book.CreateBook{ID: id, Title: "Emma\u0085"}, WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "right-to-left override in title", When: book.CreateBook{ID: id, Title: "Emma\u202egnp.exe"},
			WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "bidi isolate in title", When: book.CreateBook{ID: id, Title: "\u2067Emma"}, WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "invalid UTF-8 in title", When: book.CreateBook{ID: id, Title: "Emma\xff"}, WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "non-Latin title", When: book.CreateBook{ID: id, Title: "الكتاب été 漢字 \uFFFD"},
			Want: []book.Event{book.BookCreated{ID: id, Title: "الكتاب été 漢字 \uFFFD"}}},
	})
}

func TestUpdateBook(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "existing", Given: []book.Event{created(), book.BookAuthorSet{ID: id, AuthorCode: "ja"}, added(1, "One")},
			When: book.UpdateBook{ID: id, Title: "Emma (2nd ed.)"},
			Want: []book.Event{book.BookUpdated{ID: id, Title: "Emma (2nd ed.)"}},
			Check: wantState(book.State{ID: id, Title: "Emma (2nd ed.)", AuthorCode: "ja",
				Chapters: []book.Chapter{ch(1, "One")}, NextChapterID: 2, Version: 4})},
		{Name: "missing", When: book.UpdateBook{ID: id, Title: "Emma"}, WantCode: domain.CodeNotFound},
		{Name: "removed", Given: []book.Event{created(), book.BookRemoved{ID: id}}, When: book.UpdateBook{ID: id, Title: "Emma"},
			WantCode: domain.CodeNotFound},
		{Name: "blank title", Given: []book.Event{created()}, When: book.UpdateBook{ID: id, Title: ""},
			WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "invalid id", When: book.UpdateBook{ID: "nope", Title: "Emma"}, WantCode: domain.CodeInvalid, WantField: "id"},
		{Name: "escape in title", Given: []book.Event{created()}, When: book.UpdateBook{ID: id, Title: "\x1b[2JEmma"},
			WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "left-to-right mark in title", Given: []book.Event{created()}, When: book.UpdateBook{ID: id, Title: "Emma\u200e"},
			WantCode: domain.CodeInvalid, WantField: "title"},
	})
}

func TestSetBookAuthor(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "set", Given: []book.Event{created()}, When: book.SetBookAuthor{ID: id, AuthorCode: "jane-austen"},
			Want:  []book.Event{book.BookAuthorSet{ID: id, AuthorCode: "jane-austen"}},
			Check: wantState(book.State{ID: id, Title: "Emma", AuthorCode: "jane-austen", Chapters: []book.Chapter{}, NextChapterID: 1, Version: 2})},
		{Name: "reassign", Given: []book.Event{created(), book.BookAuthorSet{ID: id, AuthorCode: "a"}},
			When: book.SetBookAuthor{ID: id, AuthorCode: "b"},
			Want: []book.Event{book.BookAuthorSet{ID: id, AuthorCode: "b"}},
			Check: func(t *testing.T, s book.State) {
				if s.AuthorCode != "b" || s.Version != 3 {
					t.Fatalf("state = %+v", s)
				}
			}},
		{Name: "clear", Given: []book.Event{created(), book.BookAuthorSet{ID: id, AuthorCode: "a"}},
			When:  book.SetBookAuthor{ID: id},
			Want:  []book.Event{book.BookAuthorSet{ID: id}},
			Check: wantState(book.State{ID: id, Title: "Emma", Chapters: []book.Chapter{}, NextChapterID: 1, Version: 3})},
		{Name: "clear without author", Given: []book.Event{created()}, When: book.SetBookAuthor{ID: id},
			Want: []book.Event{book.BookAuthorSet{ID: id}}, Check: wantVersion(2)},
		{Name: "only if author: still that author", Given: []book.Event{created(), book.BookAuthorSet{ID: id, AuthorCode: "a"}},
			When: book.SetBookAuthor{ID: id, OnlyIfAuthor: "a"},
			Want: []book.Event{book.BookAuthorSet{ID: id}}, Check: wantVersion(3)},
		{Name: "only if author: re-assigned meanwhile", Given: []book.Event{created(), book.BookAuthorSet{ID: id, AuthorCode: "b"}},
			When: book.SetBookAuthor{ID: id, OnlyIfAuthor: "a"}, Want: nil, Check: wantVersion(2)},
		{Name: "missing", When: book.SetBookAuthor{ID: id, AuthorCode: "a"}, WantCode: domain.CodeNotFound},
		{Name: "missing clear", When: book.SetBookAuthor{ID: id}, WantCode: domain.CodeNotFound},
		{Name: "removed", Given: []book.Event{created(), book.BookRemoved{ID: id}}, When: book.SetBookAuthor{ID: id, AuthorCode: "a"},
			WantCode: domain.CodeNotFound},
		{Name: "invalid author code", Given: []book.Event{created()}, When: book.SetBookAuthor{ID: id, AuthorCode: "a--b"},
			WantCode: domain.CodeInvalid, WantField: "authorCode"},
		{Name: "invalid id", When: book.SetBookAuthor{ID: other + "0", AuthorCode: "a"}, WantCode: domain.CodeInvalid, WantField: "id"},
	})
}

func TestAddChapter(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "first", Given: []book.Event{created()}, When: book.AddChapter{ID: id, Title: "One", Content: "text of One"},
			Want:  []book.Event{added(1, "One")},
			Check: wantState(book.State{ID: id, Title: "Emma", Chapters: []book.Chapter{ch(1, "One")}, NextChapterID: 2, Version: 2})},
		{Name: "second", Given: []book.Event{created(), added(1, "One")}, When: book.AddChapter{ID: id, Title: "Two", Content: "text of Two"},
			Want: []book.Event{added(2, "Two")},
			Check: wantState(book.State{ID: id, Title: "Emma", Chapters: []book.Chapter{ch(1, "One"), ch(2, "Two")},
				NextChapterID: 3, Version: 3})},
		{Name: "ids never reused after removal", Given: []book.Event{created(), added(1, "One"), added(2, "Two"), removed(2)},
			When: book.AddChapter{ID: id, Title: "Three", Content: "text of Three"},
			Want: []book.Event{added(3, "Three")},
			Check: wantState(book.State{ID: id, Title: "Emma", Chapters: []book.Chapter{ch(1, "One"), ch(3, "Three")},
				NextChapterID: 4, Version: 5})},
		{Name: "ids never reused after removing all", Given: []book.Event{created(), added(1, "One"), removed(1)},
			When: book.AddChapter{ID: id, Title: "Two", Content: "text of Two"},
			Want: []book.Event{added(2, "Two")}},
		{Name: "ids restart after the book is recreated", Given: []book.Event{created(), added(1, "One"), removed(1), book.BookRemoved{ID: id}, created()},
			When: book.AddChapter{ID: id, Title: "One", Content: "text of One"},
			Want: []book.Event{added(1, "One")}},
		{Name: "empty content", Given: []book.Event{created()}, When: book.AddChapter{ID: id, Title: "Blank"},
			Want: []book.Event{book.ChapterAdded{ID: id, ChapterID: 1, Title: "Blank"}}},
		{Name: "content at limit", Given: []book.Event{created()},
			When: book.AddChapter{ID: id, Title: "Long", Content: strings.Repeat("x", book.MaxContentLen)},
			Want: []book.Event{book.ChapterAdded{ID: id, ChapterID: 1, Title: "Long", Content: strings.Repeat("x", book.MaxContentLen)}}},
		{Name: "content too long", Given: []book.Event{created()},
			When:     book.AddChapter{ID: id, Title: "Long", Content: strings.Repeat("x", book.MaxContentLen+1)},
			WantCode: domain.CodeInvalid, WantField: "content"},
		{Name: "blank title", Given: []book.Event{created()}, When: book.AddChapter{ID: id, Title: " ", Content: "c"},
			WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "missing", When: book.AddChapter{ID: id, Title: "One"}, WantCode: domain.CodeNotFound},
		{Name: "removed", Given: []book.Event{created(), book.BookRemoved{ID: id}}, When: book.AddChapter{ID: id, Title: "One"},
			WantCode: domain.CodeNotFound},
		{Name: "invalid id", When: book.AddChapter{ID: "", Title: "One"}, WantCode: domain.CodeInvalid, WantField: "id"},
		{Name: "line breaks and tabs in content", Given: []book.Event{created()},
			When: book.AddChapter{ID: id, Title: "One", Content: "line\r\n\tindented\n"},
			Want: []book.Event{book.ChapterAdded{ID: id, ChapterID: 1, Title: "One", Content: "line\r\n\tindented\n"}}},
		{Name: "NUL in content", Given: []book.Event{created()}, When: book.AddChapter{ID: id, Title: "One", Content: "a\x00b"},
			WantCode: domain.CodeInvalid, WantField: "content"},
		{Name: "escape in content", Given: []book.Event{created()}, When: book.AddChapter{ID: id, Title: "One", Content: "\x1b]0;pwned\x07"},
			WantCode: domain.CodeInvalid, WantField: "content"},
		{Name: "C1 control in content", Given: []book.Event{created()}, When: book.AddChapter{ID: id, Title: "One", Content: "a\u009bb"},
			WantCode: domain.CodeInvalid, WantField: "content"},
		{Name: "bidi override in content", Given: []book.Event{created()}, When: book.AddChapter{ID: id, Title: "One", Content: "a\u202db"},
			WantCode: domain.CodeInvalid, WantField: "content"},
		{Name: "arabic letter mark in content", Given: []book.Event{created()}, When: book.AddChapter{ID: id, Title: "One", Content: "a\u061cb"},
			WantCode: domain.CodeInvalid, WantField: "content"},
		{Name: "control in chapter title", Given: []book.Event{created()}, When: book.AddChapter{ID: id, Title: "One\r", Content: "c"},
			WantCode: domain.CodeInvalid, WantField: "title"},
		{Name: "invalid UTF-8 in content", Given: []book.Event{created()}, When: book.AddChapter{ID: id, Title: "One", Content: "\xc3("},
			WantCode: domain.CodeInvalid, WantField: "content"},
	})
}

// withChapters returns the events of a book with n chapters of size bytes
// of content each.
func withChapters(n, size int) []book.Event {
	evs := []book.Event{created()}
	for i := 1; i <= n; i++ {
		evs = append(evs, book.ChapterAdded{ID: id, ChapterID: int64(i), Title: "Chapter", Content: strings.Repeat("x", size)})
	}
	return evs
}

func TestBookLimits(t *testing.T) {
	const big = book.MaxContentLen
	full := book.MaxBookContentBytes / big // chapters of big content that fit
	rest := book.MaxBookContentBytes - full*big
	estest.Run(t, agg, []tcase{
		{Name: "last chapter that fits", Given: withChapters(book.MaxChapters-1, 1),
			When: book.AddChapter{ID: id, Title: "Last", Content: "x"},
			Want: []book.Event{book.ChapterAdded{ID: id, ChapterID: book.MaxChapters, Title: "Last", Content: "x"}},
			Check: func(t *testing.T, s book.State) {
				if len(s.Chapters) != book.MaxChapters {
					t.Fatalf("%d chapters, want %d", len(s.Chapters), book.MaxChapters)
				}
			}},
		{Name: "one chapter too many", Given: withChapters(book.MaxChapters, 1),
			When: book.AddChapter{ID: id, Title: "More", Content: "x"}, WantCode: domain.CodeTooLarge, WantField: "chapters"},
		{Name: "empty chapter too many", Given: withChapters(book.MaxChapters, 0),
			When: book.AddChapter{ID: id, Title: "More"}, WantCode: domain.CodeTooLarge, WantField: "chapters"},
		{Name: "a chapter removed makes room", Given: append(withChapters(book.MaxChapters, 1), removed(7)),
			When: book.AddChapter{ID: id, Title: "More", Content: "x"},
			Want: []book.Event{book.ChapterAdded{ID: id, ChapterID: book.MaxChapters + 1, Title: "More", Content: "x"}}},
		{Name: "content up to the book's limit", Given: withChapters(full, big),
			When: book.AddChapter{ID: id, Title: "Rest", Content: strings.Repeat("y", rest)},
			Want: []book.Event{book.ChapterAdded{ID: id, ChapterID: int64(full) + 1, Title: "Rest", Content: strings.Repeat("y", rest)}}},
		{Name: "content one byte over the book's limit", Given: withChapters(full, big),
			When:     book.AddChapter{ID: id, Title: "Rest", Content: strings.Repeat("y", rest+1)},
			WantCode: domain.CodeTooLarge, WantField: "content"},
		{Name: "removed content makes room", Given: append(withChapters(full, big), removed(1)),
			When: book.AddChapter{ID: id, Title: "Rest", Content: strings.Repeat("y", big)},
			Want: []book.Event{book.ChapterAdded{ID: id, ChapterID: int64(full) + 1, Title: "Rest", Content: strings.Repeat("y", big)}}},
		{Name: "invalid content before size", Given: withChapters(book.MaxChapters, 1),
			When: book.AddChapter{ID: id, Title: "More", Content: "\x00"}, WantCode: domain.CodeInvalid, WantField: "content"},
	})
}

func TestTooLargeMessageNamesLimit(t *testing.T) {
	s := book.State{}
	for _, e := range withChapters(book.MaxChapters, 0) {
		s = book.Evolve(s, e)
	}
	_, err := book.Decide(s, book.AddChapter{ID: id, Title: "More"})
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(book.MaxChapters)) {
		t.Fatalf("err = %v; want a message naming the limit %d", err, book.MaxChapters)
	}
}

func TestRemoveChapter(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "existing", Given: []book.Event{created(), added(1, "One"), added(2, "Two"), added(3, "Three")},
			When: book.RemoveChapter{ID: id, ChapterID: 2},
			Want: []book.Event{removed(2)},
			Check: wantState(book.State{ID: id, Title: "Emma", Chapters: []book.Chapter{ch(1, "One"), ch(3, "Three")},
				NextChapterID: 4, Version: 5})},
		{Name: "last one", Given: []book.Event{created(), added(1, "One")}, When: book.RemoveChapter{ID: id, ChapterID: 1},
			Want:  []book.Event{removed(1)},
			Check: wantState(book.State{ID: id, Title: "Emma", Chapters: []book.Chapter{}, NextChapterID: 2, Version: 3})},
		{Name: "unknown chapter", Given: []book.Event{created(), added(1, "One")}, When: book.RemoveChapter{ID: id, ChapterID: 2},
			WantCode: domain.CodeNotFound},
		{Name: "already removed chapter", Given: []book.Event{created(), added(1, "One"), removed(1)},
			When: book.RemoveChapter{ID: id, ChapterID: 1}, WantCode: domain.CodeNotFound},
		{Name: "zero chapter id", Given: []book.Event{created()}, When: book.RemoveChapter{ID: id}, WantCode: domain.CodeNotFound},
		{Name: "negative chapter id", Given: []book.Event{created()}, When: book.RemoveChapter{ID: id, ChapterID: -1},
			WantCode: domain.CodeNotFound},
		{Name: "missing book", When: book.RemoveChapter{ID: id, ChapterID: 1}, WantCode: domain.CodeNotFound},
		{Name: "removed book", Given: []book.Event{created(), added(1, "One"), removed(1), book.BookRemoved{ID: id}},
			When: book.RemoveChapter{ID: id, ChapterID: 1}, WantCode: domain.CodeNotFound},
		{Name: "invalid id", When: book.RemoveChapter{ID: "x", ChapterID: 1}, WantCode: domain.CodeInvalid, WantField: "id"},
	})
}

func TestRemoveBook(t *testing.T) {
	estest.Run(t, agg, []tcase{
		{Name: "without chapters", Given: []book.Event{created()}, When: book.RemoveBook{ID: id},
			Want: []book.Event{book.BookRemoved{ID: id}}, Check: wantState(book.State{})},
		{Name: "with chapters", Given: []book.Event{created(), book.BookAuthorSet{ID: id, AuthorCode: "ja"},
			added(1, "One"), added(2, "Two"), added(3, "Three"), removed(2)},
			When:  book.RemoveBook{ID: id},
			Want:  []book.Event{removed(1), removed(3), book.BookRemoved{ID: id}},
			Check: wantState(book.State{})},
		{Name: "missing", When: book.RemoveBook{ID: id}, WantCode: domain.CodeNotFound},
		{Name: "twice", Given: []book.Event{created(), book.BookRemoved{ID: id}}, When: book.RemoveBook{ID: id},
			WantCode: domain.CodeNotFound},
		{Name: "invalid id", When: book.RemoveBook{ID: strings.Repeat("g", 36)}, WantCode: domain.CodeInvalid, WantField: "id"},
	})
}

type bogus struct{ book.Command }

func TestUnknownCommand(t *testing.T) {
	for _, cmd := range []book.Command{nil, bogus{}} {
		evs, err := book.Decide(book.State{}, cmd)
		var rej *es.Rejection
		if evs != nil || !errors.As(err, &rej) || rej.Code != domain.CodeInvalid || rej.Field != "type" {
			t.Fatalf("Decide(%T) = %v, %v; want invalid type", cmd, evs, err)
		}
	}
}

func TestRemoveChapterMessageNamesChapter(t *testing.T) {
	s := book.Evolve(book.State{}, created())
	_, err := book.Decide(s, book.RemoveChapter{ID: id, ChapterID: 42})
	if err == nil || !strings.Contains(err.Error(), "42") {
		t.Fatalf("err = %v; want a message naming chapter 42", err)
	}
}

func TestEvolveDoesNotAliasChapters(t *testing.T) {
	s := book.State{}
	for _, e := range []book.Event{created(), added(1, "One"), added(2, "Two"), added(3, "Three")} {
		s = book.Evolve(s, e)
	}
	before := append([]book.Chapter(nil), s.Chapters...)
	a := book.Evolve(s, removed(1))
	b := book.Evolve(s, added(4, "Four"))
	if !reflect.DeepEqual(s.Chapters, before) {
		t.Fatalf("Evolve modified its input: %+v, was %+v", s.Chapters, before)
	}
	if len(a.Chapters) != 2 || len(b.Chapters) != 4 {
		t.Fatalf("a = %+v, b = %+v", a.Chapters, b.Chapters)
	}
	if c, ok := b.Chapter(4); !ok || c.Title != "Four" {
		t.Fatalf("Chapter(4) = %+v, %v", c, ok)
	}
	if _, ok := a.Chapter(1); ok {
		t.Fatal("Chapter(1) found after removal")
	}
}

func TestStateChapterAndExists(t *testing.T) {
	var s book.State
	if s.Exists() {
		t.Fatal("zero state exists")
	}
	if _, ok := s.Chapter(1); ok {
		t.Fatal("zero state has chapter 1")
	}
	s = book.Evolve(s, created())
	s = book.Evolve(s, added(1, "One"))
	if !s.Exists() {
		t.Fatal("created book does not exist")
	}
	if c, ok := s.Chapter(1); !ok || c != ch(1, "One") {
		t.Fatalf("Chapter(1) = %+v, %v", c, ok)
	}
}

func TestValidateID(t *testing.T) {
	for _, s := range []string{id, other, "ffffffff-ffff-ffff-ffff-ffffffffffff", "01234567-89ab-cdef-0123-456789abcdef"} {
		if err := book.ValidateID("id", s); err != nil {
			t.Errorf("ValidateID(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "x", strings.ToUpper(id), id + "0", id[:35], " " + id[1:],
		"3f2c1a9e08b7d-4c6e-9f10-2a3b4c5d6e7f", "3f2c1a9e-8b7d-4c6e-9f10_2a3b4c5d6e7f", "3f2c1a9g-8b7d-4c6e-9f10-2a3b4c5d6e7f",
		"3f2c1a9e-8b7d-4c6e-9f102-a3b4c5d6e7f", "urn:uuid:" + id} {
		err := book.ValidateID("bookId", s)
		if err == nil || err.Code != domain.CodeInvalid || err.Field != "bookId" {
			t.Errorf("ValidateID(%q) = %v; want invalid bookId", s, err)
		}
	}
}

// printable is an independent statement of the text rule: valid UTF-8,
// nothing of Unicode category Cc (but \n, \r, \t in multi-line text), and
// none of the bidirectional formatting characters.
func printable(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if multiline && strings.ContainsRune("\n\r\t", r) {
			continue
		}
		if unicode.Is(unicode.Cc, r) || strings.ContainsRune("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c", r) {
			return false
		}
	}
	return true
}

// FuzzDecide feeds arbitrary input into every command on a few starting
// states and checks that Decide never panics, rejects only with a
// *es.Rejection and no events, and that accepted events fold into a
// consistent state whose version grew by the number of events.
func FuzzDecide(f *testing.F) {
	f.Add(uint8(0), uint8(0), id, "Emma", "", "jane-austen", int64(0))
	f.Add(uint8(1), uint8(1), id, "Title", "content", "", int64(1))
	f.Add(uint8(2), uint8(2), id, "", "", "a--b", int64(2))
	f.Add(uint8(3), uint8(3), id, "Chapter", strings.Repeat("x", 10), "", int64(0))
	f.Add(uint8(4), uint8(1), id, "", "", "", int64(3))
	f.Add(uint8(4), uint8(1), id, "", "", "", int64(2))
	f.Add(uint8(5), uint8(1), id, "", "", "", int64(-1))
	f.Add(uint8(0), uint8(2), strings.ToUpper(id), "\x00", "\xff", "Ä", int64(1<<62))
	f.Add(uint8(1), uint8(3), id, "Emma\u202e", "", "", int64(0))
	f.Add(uint8(3), uint8(3), id, "One", "a\r\n\tb\x85", "", int64(0))
	f.Add(uint8(3), uint8(1), id, "One", "\u2066x\u2069", "", int64(0))
	f.Fuzz(func(t *testing.T, op, start uint8, bookID, title, content, authorCode string, chapterID int64) {
		var given []book.Event
		switch start % 4 {
		case 1: // a book with chapters 1 and 3 (2 was removed)
			given = []book.Event{created(), book.BookAuthorSet{ID: id, AuthorCode: "ja"}, added(1, "One"), added(2, "Two"),
				added(3, "Three"), removed(2)}
		case 2: // a removed book
			given = []book.Event{created(), added(1, "One"), removed(1), book.BookRemoved{ID: id}}
		case 3: // a bare book
			given = []book.Event{created()}
		}
		var s book.State
		for _, e := range given {
			s = book.Evolve(s, e)
		}
		var cmd book.Command
		switch op % 6 {
		case 0:
			cmd = book.CreateBook{ID: bookID, Title: title, AuthorCode: authorCode}
		case 1:
			cmd = book.UpdateBook{ID: bookID, Title: title}
		case 2:
			cmd = book.SetBookAuthor{ID: bookID, AuthorCode: authorCode}
		case 3:
			cmd = book.AddChapter{ID: bookID, Title: title, Content: content}
		case 4:
			cmd = book.RemoveChapter{ID: bookID, ChapterID: chapterID}
		case 5:
			cmd = book.RemoveBook{ID: bookID}
		}
		evs, err := book.Decide(s, cmd)
		if err != nil {
			var rej *es.Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("Decide(%#v) error %T %v is not an *es.Rejection", cmd, err, err)
			}
			if evs != nil {
				t.Fatalf("rejected %#v with events %#v", cmd, evs)
			}
			switch rej.Code {
			case domain.CodeInvalid, domain.CodeNotFound, domain.CodeAlreadyExists, domain.CodeTooLarge:
			default:
				t.Fatalf("unexpected rejection %+v", rej)
			}
			return
		}
		if len(evs) == 0 {
			t.Fatalf("Decide(%#v) accepted without events", cmd)
		}
		if book.ValidateID("id", bookID) != nil {
			t.Fatalf("Decide accepted invalid id %q", bookID)
		}
		next := s
		for _, e := range evs {
			next = book.Evolve(next, e)
		}
		if _, ok := evs[len(evs)-1].(book.BookRemoved); ok {
			if !reflect.DeepEqual(next, book.State{}) {
				t.Fatalf("after BookRemoved state = %+v, want zero", next)
			}
			return
		}
		if got, want := book.Version(next), book.Version(s)+int64(len(evs)); got != want {
			t.Fatalf("version after %#v = %d, want %d", evs, got, want)
		}
		if !next.Exists() {
			t.Fatalf("state after %#v = %+v does not exist", evs, next)
		}
		if _, ok := cmd.(book.CreateBook); ok && (next.ID != bookID || next.Title != title || next.AuthorCode != authorCode) {
			t.Fatalf("state after %#v = %+v", evs, next)
		}
		// Text accepted is printable: no control character (but line
		// breaks and tabs in content) and no bidirectional formatting.
		switch cmd.(type) {
		case book.CreateBook, book.UpdateBook:
			if !printable(next.Title, false) {
				t.Fatalf("title %q accepted", next.Title)
			}
		case book.AddChapter:
			if !printable(title, false) || !printable(content, true) {
				t.Fatalf("chapter %q, %q accepted", title, content)
			}
		}
		last := int64(0)
		for _, c := range next.Chapters {
			if c.ID <= last || c.ID >= next.NextChapterID {
				t.Fatalf("chapter ids out of order or not below next id %d: %+v", next.NextChapterID, next.Chapters)
			}
			last = c.ID
		}
		if next.NextChapterID < s.NextChapterID {
			t.Fatalf("next chapter id went back from %d to %d", s.NextChapterID, next.NextChapterID)
		}
	})
}

func TestTypesListed(t *testing.T) {
	estest.AllListed(t, book.Commands())
	estest.AllListed(t, book.Events())
}
