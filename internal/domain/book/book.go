// Package book is the Book aggregate: its commands, events, state and rules.
// It is pure: decide and evolve are functions of their arguments.
//
// A book may refer to an author by code. Whether that author exists is not
// checked here (the aggregate cannot see authors); the service checks it
// before sending the command. The aggregate only checks the code's form.
package book

import (
	"slices"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/internal/domain"
)

// MaxContentLen bounds a chapter's content, in bytes. Empty content is
// allowed.
const MaxContentLen = 100_000

// Limits on a whole book, so that its state (and the outcome that carries
// it) always fits a Kafka record of the default max.message.bytes (1 MiB):
// at most MaxChapters chapters of titles up to domain.MaxNameLen bytes,
// plus MaxBookContentBytes of content, is about 560 KiB, leaving room for
// the event of the command that reaches the limit and for encoding.
const (
	// MaxChapters bounds the number of current chapters of a book.
	MaxChapters = 200
	// MaxBookContentBytes bounds the content of all current chapters of
	// a book together, in bytes.
	MaxBookContentBytes = 512 << 10
)

// Chapter is one chapter of a book. Its ID is unique within the book and is
// never reused, even after the chapter is removed.
type Chapter struct {
	ID      int64  `json:"id" avro:"id"`
	Title   string `json:"title" avro:"title"`
	Content string `json:"content" avro:"content"`
}

// State is a book as folded from its events. The zero State is a book that
// does not exist.
type State struct {
	ID    string `json:"id" avro:"id"`
	Title string `json:"title" avro:"title"`
	// AuthorCode is the code of the book's author; "" means none.
	AuthorCode string `json:"authorCode" avro:"authorCode"`
	// AuthorPosition tells which life of AuthorCode the book was given
	// to (a deleted code may be created again): the position in that
	// author's history at which it was seen to exist (see
	// SetBookAuthor). 0 means unknown.
	AuthorPosition int64 `json:"authorPosition,omitempty" avro:"authorPosition,default=0"`
	// Chapters are the current chapters in the order they were added.
	Chapters []Chapter `json:"chapters" avro:"chapters"`
	// NextChapterID is the id the next added chapter gets (1 for a new book).
	NextChapterID int64 `json:"nextChapterId" avro:"nextChapterId"`
	// Version counts the events applied since the book was (last) created.
	Version int64 `json:"version" avro:"version"`
}

// Exists reports whether the book exists (was created and not removed).
func (s State) Exists() bool { return s.Version > 0 }

// Chapter returns the current chapter with the given id, if there is one.
func (s State) Chapter(id int64) (Chapter, bool) {
	for _, c := range s.Chapters {
		if c.ID == id {
			return c, true
		}
	}
	return Chapter{}, false
}

// contentBytes is the size of the content of all current chapters.
func (s State) contentBytes() int {
	n := 0
	for _, c := range s.Chapters {
		n += len(c.Content)
	}
	return n
}

// nextChapterID is the id the next chapter gets; never below 1.
func (s State) nextChapterID() int64 { return max(s.NextChapterID, 1) }

// Command is a request to change a book.
type Command interface {
	// BookID is the key of the book the command is about.
	BookID() string
	isCommand()
}

// CreateBook creates a book under a new id, optionally with an author.
type CreateBook struct {
	ID    string `json:"id" avro:"id"`
	Title string `json:"title" avro:"title"`
	// AuthorCode is optional; "" means the book has no author.
	AuthorCode string `json:"authorCode" avro:"authorCode"`
	// AuthorPosition is as in SetBookAuthor.
	AuthorPosition int64 `json:"authorPosition,omitempty" avro:"authorPosition,default=0"`
}

// UpdateBook replaces a book's title.
type UpdateBook struct {
	ID    string `json:"id" avro:"id"`
	Title string `json:"title" avro:"title"`
}

// SetBookAuthor sets a book's author; an empty AuthorCode clears it.
type SetBookAuthor struct {
	ID         string `json:"id" avro:"id"`
	AuthorCode string `json:"authorCode" avro:"authorCode"`
	// AuthorPosition is the position in the author's history (its
	// events numbered 1, 2, 3… for the code, never reset) at which the
	// author was seen to exist before the command was sent; 0 when
	// unknown. An author code deleted and created again has a new life
	// with higher positions, so the position tells the read model and
	// the reaction which life the book was given to. The service sets
	// it; whatever a writer puts there is replaced.
	AuthorPosition int64 `json:"authorPosition,omitempty" avro:"authorPosition,default=0"`
	// OnlyIfAuthor, when set, makes the command a no-op (accepted, no
	// events) unless the book's author is still OnlyIfAuthor. Reactions
	// use it: "unassign the deleted author" must not undo a later
	// re-assignment of the book to someone else.
	OnlyIfAuthor string `json:"onlyIfAuthor,omitempty" avro:"onlyIfAuthor"`
	// OnlyIfAssignedBy, when above 0, narrows OnlyIfAuthor to a book
	// given that author at or before this position of the author's
	// history (or at an unknown one): the reaction to a deletion at
	// position D must not unassign a book given to the author's next
	// life, created after D.
	OnlyIfAssignedBy int64 `json:"onlyIfAssignedBy,omitempty" avro:"onlyIfAssignedBy,default=0"`
}

// AddChapter appends a chapter to a book; the chapter gets the next id.
type AddChapter struct {
	ID      string `json:"id" avro:"id"`
	Title   string `json:"title" avro:"title"`
	Content string `json:"content" avro:"content"`
}

// RemoveChapter removes one chapter of a book.
type RemoveChapter struct {
	ID        string `json:"id" avro:"id"`
	ChapterID int64  `json:"chapterId" avro:"chapterId"`
}

// RemoveBook removes a book and all its chapters; the id may be created
// again afterwards.
type RemoveBook struct {
	ID string `json:"id" avro:"id"`
}

// BookID implements Command.
func (c CreateBook) BookID() string { return c.ID }

// BookID implements Command.
func (c UpdateBook) BookID() string { return c.ID }

// BookID implements Command.
func (c SetBookAuthor) BookID() string { return c.ID }

// BookID implements Command.
func (c AddChapter) BookID() string { return c.ID }

// BookID implements Command.
func (c RemoveChapter) BookID() string { return c.ID }

// BookID implements Command.
func (c RemoveBook) BookID() string { return c.ID }

func (CreateBook) isCommand()    {}
func (UpdateBook) isCommand()    {}
func (SetBookAuthor) isCommand() {}
func (AddChapter) isCommand()    {}
func (RemoveChapter) isCommand() {}
func (RemoveBook) isCommand()    {}

// Commands returns a zero value of every command type: the one list of
// them, from which the codecs (JSON and Avro), fuzzers and load tools take
// theirs. Its test fails when a type implementing Command is missing.
func Commands() []Command {
	return []Command{CreateBook{}, UpdateBook{}, SetBookAuthor{}, AddChapter{}, RemoveChapter{}, RemoveBook{}}
}

// Event is a fact about a book.
type Event interface {
	isEvent()
}

// BookCreated records a new book (without author; see BookAuthorSet).
type BookCreated struct {
	ID    string `json:"id" avro:"id"`
	Title string `json:"title" avro:"title"`
}

// BookUpdated records a book's new title.
type BookUpdated struct {
	ID    string `json:"id" avro:"id"`
	Title string `json:"title" avro:"title"`
}

// BookAuthorSet records a book's author; an empty AuthorCode means none.
type BookAuthorSet struct {
	ID         string `json:"id" avro:"id"`
	AuthorCode string `json:"authorCode" avro:"authorCode"`
	// AuthorPosition is the command's (see SetBookAuthor); 0 when
	// unknown or without an author.
	AuthorPosition int64 `json:"authorPosition,omitempty" avro:"authorPosition,default=0"`
}

// ChapterAdded records a new chapter under ChapterID.
type ChapterAdded struct {
	ID        string `json:"id" avro:"id"`
	ChapterID int64  `json:"chapterId" avro:"chapterId"`
	Title     string `json:"title" avro:"title"`
	Content   string `json:"content" avro:"content"`
}

// ChapterRemoved records that a chapter is gone.
type ChapterRemoved struct {
	ID        string `json:"id" avro:"id"`
	ChapterID int64  `json:"chapterId" avro:"chapterId"`
}

// BookRemoved records that a book is gone.
type BookRemoved struct {
	ID string `json:"id" avro:"id"`
}

func (BookCreated) isEvent()    {}
func (BookUpdated) isEvent()    {}
func (BookAuthorSet) isEvent()  {}
func (ChapterAdded) isEvent()   {}
func (ChapterRemoved) isEvent() {}
func (BookRemoved) isEvent()    {}

// Events returns a zero value of every event type: the one list of them
// (see Commands).
func Events() []Event {
	return []Event{BookCreated{}, BookUpdated{}, BookAuthorSet{}, ChapterAdded{}, ChapterRemoved{}, BookRemoved{}}
}

// Decide returns the events that cmd causes on s, or an *es.Rejection.
// Fields are validated before the book's existence is checked.
func Decide(s State, cmd Command) ([]Event, error) {
	switch c := cmd.(type) {
	case CreateBook:
		if err := ValidateID("id", c.ID); err != nil {
			return nil, err
		}
		if err := domain.ValidateName("title", c.Title); err != nil {
			return nil, err
		}
		if err := validateAuthor(c.AuthorCode, c.AuthorPosition); err != nil {
			return nil, err
		}
		if s.Exists() {
			return nil, domain.AlreadyExists("book %q already exists", c.ID)
		}
		evs := []Event{BookCreated{ID: c.ID, Title: c.Title}}
		if c.AuthorCode != "" {
			evs = append(evs, BookAuthorSet{ID: c.ID, AuthorCode: c.AuthorCode, AuthorPosition: c.AuthorPosition})
		}
		return evs, nil
	case UpdateBook:
		if err := ValidateID("id", c.ID); err != nil {
			return nil, err
		}
		if err := domain.ValidateName("title", c.Title); err != nil {
			return nil, err
		}
		if !s.Exists() {
			return nil, notFound(c.ID)
		}
		return []Event{BookUpdated(c)}, nil
	case SetBookAuthor:
		if err := ValidateID("id", c.ID); err != nil {
			return nil, err
		}
		if err := validateAuthor(c.AuthorCode, c.AuthorPosition); err != nil {
			return nil, err
		}
		if c.OnlyIfAssignedBy < 0 {
			return nil, domain.Invalid("onlyIfAssignedBy", "must not be negative")
		}
		if !s.Exists() {
			return nil, notFound(c.ID)
		}
		if c.OnlyIfAuthor != "" && (s.AuthorCode != c.OnlyIfAuthor || c.OnlyIfAssignedBy > 0 && s.AuthorPosition > c.OnlyIfAssignedBy) {
			return nil, nil
		}
		return []Event{BookAuthorSet{ID: c.ID, AuthorCode: c.AuthorCode, AuthorPosition: c.AuthorPosition}}, nil
	case AddChapter:
		if err := ValidateID("id", c.ID); err != nil {
			return nil, err
		}
		if err := domain.ValidateName("title", c.Title); err != nil {
			return nil, err
		}
		if len(c.Content) > MaxContentLen {
			return nil, domain.Invalid("content", "must be at most %d bytes", MaxContentLen)
		}
		if err := domain.ValidateText("content", c.Content); err != nil {
			return nil, err
		}
		if !s.Exists() {
			return nil, notFound(c.ID)
		}
		if len(s.Chapters) >= MaxChapters {
			return nil, domain.TooLarge("chapters", "book %q has %d chapters, the most a book may have", c.ID, len(s.Chapters))
		}
		if n := s.contentBytes(); n+len(c.Content) > MaxBookContentBytes {
			return nil, domain.TooLarge("content", "book %q has %d bytes of content; %d more would exceed the %d bytes a book may hold", c.ID, n, len(c.Content), MaxBookContentBytes)
		}
		return []Event{ChapterAdded{ID: c.ID, ChapterID: s.nextChapterID(), Title: c.Title, Content: c.Content}}, nil
	case RemoveChapter:
		if err := ValidateID("id", c.ID); err != nil {
			return nil, err
		}
		if !s.Exists() {
			return nil, notFound(c.ID)
		}
		if _, ok := s.Chapter(c.ChapterID); !ok {
			return nil, domain.NotFound("chapter %d of book %q not found", c.ChapterID, c.ID)
		}
		return []Event{ChapterRemoved(c)}, nil
	case RemoveBook:
		if err := ValidateID("id", c.ID); err != nil {
			return nil, err
		}
		if !s.Exists() {
			return nil, notFound(c.ID)
		}
		evs := make([]Event, 0, len(s.Chapters)+1)
		for _, ch := range s.Chapters {
			evs = append(evs, ChapterRemoved{ID: c.ID, ChapterID: ch.ID})
		}
		return append(evs, BookRemoved(c)), nil
	default:
		return nil, domain.Invalid("type", "unknown book command %T", cmd)
	}
}

func notFound(id string) *es.Rejection {
	return domain.NotFound("book %q not found", id)
}

// validateAuthor checks an optional author code, "" (none) or a slug, and
// the position it was seen at.
func validateAuthor(code string, position int64) error {
	switch {
	case position < 0:
		return domain.Invalid("authorPosition", "must not be negative")
	case code == "" && position != 0:
		return domain.Invalid("authorPosition", "must be 0 without an author")
	case code == "":
		return nil
	}
	if err := domain.ValidateSlug("authorCode", code); err != nil {
		return err
	}
	return nil
}

// ValidateID checks that s is a UUID in canonical form: 32 lower-case hex
// digits in groups of 8-4-4-4-12 joined by hyphens. Any UUID version or
// variant is accepted.
func ValidateID(field, s string) *es.Rejection {
	if s == "" {
		return domain.Invalid(field, "must not be empty")
	}
	if !isUUID(s) {
		return domain.Invalid(field, "must be a UUID in lower-case canonical form, such as %q", "3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f")
	}
	return nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// Evolve returns the state after ev. It never modifies the chapters of s in
// place, so states folded earlier stay valid. Removing returns the zero
// State, so a removed book is indistinguishable from one never created.
func Evolve(s State, ev Event) State {
	switch e := ev.(type) {
	case BookCreated:
		return State{ID: e.ID, Title: e.Title, Chapters: []Chapter{}, NextChapterID: 1, Version: s.Version + 1}
	case BookUpdated:
		s.Title = e.Title
	case BookAuthorSet:
		s.AuthorCode, s.AuthorPosition = e.AuthorCode, e.AuthorPosition
	case ChapterAdded:
		chs := make([]Chapter, len(s.Chapters), len(s.Chapters)+1)
		copy(chs, s.Chapters)
		s.Chapters = append(chs, Chapter{ID: e.ChapterID, Title: e.Title, Content: e.Content})
		s.NextChapterID = max(s.nextChapterID(), e.ChapterID+1)
	case ChapterRemoved:
		s.Chapters = slices.DeleteFunc(slices.Clone(s.Chapters), func(c Chapter) bool { return c.ID == e.ChapterID })
	case BookRemoved:
		return State{}
	default:
		return s
	}
	s.Version++
	return s
}

// Identity returns cmd without its AuthorPosition: what the service found
// when it checked the author, not what the writer asked, so a retry of
// the same request may carry another (the author was renamed between the
// tries) and is still the same request.
func Identity(cmd Command) Command {
	switch c := cmd.(type) {
	case CreateBook:
		c.AuthorPosition = 0
		return c
	case SetBookAuthor:
		c.AuthorPosition = 0
		return c
	}
	return cmd
}

// Version returns the version of s.
func Version(s State) int64 { return s.Version }
