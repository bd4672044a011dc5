// Package author is the Author aggregate: its commands, events, state and
// rules. It is pure: decide and evolve are functions of their arguments.
package author

import (
	"github.com/bookscatalog/catalog/internal/domain"
)

// State is an author as folded from its events. The zero State is an author
// that does not exist.
type State struct {
	Code      string `json:"code" avro:"code"`
	FirstName string `json:"firstName" avro:"firstName"`
	LastName  string `json:"lastName" avro:"lastName"`
	// Version counts the events applied since the author was (last) created.
	Version int64 `json:"version" avro:"version"`
}

// Exists reports whether the author exists (was created and not deleted).
func (s State) Exists() bool { return s.Version > 0 }

// Command is a request to change an author.
type Command interface {
	// AuthorCode is the key of the author the command is about.
	AuthorCode() string
	isCommand()
}

// CreateAuthor creates an author under a new code.
type CreateAuthor struct {
	Code      string `json:"code" avro:"code"`
	FirstName string `json:"firstName" avro:"firstName"`
	LastName  string `json:"lastName" avro:"lastName"`
}

// UpdateAuthor replaces an author's names.
type UpdateAuthor struct {
	Code      string `json:"code" avro:"code"`
	FirstName string `json:"firstName" avro:"firstName"`
	LastName  string `json:"lastName" avro:"lastName"`
}

// DeleteAuthor deletes an author; the code may be created again afterwards.
type DeleteAuthor struct {
	Code string `json:"code" avro:"code"`
}

// AuthorCode implements Command.
func (c CreateAuthor) AuthorCode() string { return c.Code }

// AuthorCode implements Command.
func (c UpdateAuthor) AuthorCode() string { return c.Code }

// AuthorCode implements Command.
func (c DeleteAuthor) AuthorCode() string { return c.Code }

func (CreateAuthor) isCommand() {}
func (UpdateAuthor) isCommand() {}
func (DeleteAuthor) isCommand() {}

// Commands returns a zero value of every command type: the one list of
// them, from which the codecs (JSON and Avro), fuzzers and load tools take
// theirs. Its test fails when a type implementing Command is missing.
func Commands() []Command {
	return []Command{CreateAuthor{}, UpdateAuthor{}, DeleteAuthor{}}
}

// Event is a fact about an author.
type Event interface {
	isEvent()
}

// AuthorCreated records a new author.
type AuthorCreated struct {
	Code      string `json:"code" avro:"code"`
	FirstName string `json:"firstName" avro:"firstName"`
	LastName  string `json:"lastName" avro:"lastName"`
}

// AuthorUpdated records an author's new names.
type AuthorUpdated struct {
	Code      string `json:"code" avro:"code"`
	FirstName string `json:"firstName" avro:"firstName"`
	LastName  string `json:"lastName" avro:"lastName"`
}

// AuthorDeleted records that an author is gone.
type AuthorDeleted struct {
	Code string `json:"code" avro:"code"`
}

func (AuthorCreated) isEvent() {}
func (AuthorUpdated) isEvent() {}
func (AuthorDeleted) isEvent() {}

// Events returns a zero value of every event type: the one list of them
// (see Commands).
func Events() []Event {
	return []Event{AuthorCreated{}, AuthorUpdated{}, AuthorDeleted{}}
}

// Decide returns the events that cmd causes on s, or an *es.Rejection.
func Decide(s State, cmd Command) ([]Event, error) {
	switch c := cmd.(type) {
	case CreateAuthor:
		if err := validate(c.Code, c.FirstName, c.LastName); err != nil {
			return nil, err
		}
		if s.Exists() {
			return nil, domain.AlreadyExists("author %q already exists", c.Code)
		}
		return []Event{AuthorCreated(c)}, nil
	case UpdateAuthor:
		if err := validate(c.Code, c.FirstName, c.LastName); err != nil {
			return nil, err
		}
		if !s.Exists() {
			return nil, domain.NotFound("author %q not found", c.Code)
		}
		return []Event{AuthorUpdated(c)}, nil
	case DeleteAuthor:
		if err := domain.ValidateSlug("code", c.Code); err != nil {
			return nil, err
		}
		if !s.Exists() {
			return nil, domain.NotFound("author %q not found", c.Code)
		}
		return []Event{AuthorDeleted(c)}, nil
	default:
		return nil, domain.Invalid("type", "unknown author command %T", cmd)
	}
}

func validate(code, first, last string) error {
	if err := domain.ValidateSlug("code", code); err != nil {
		return err
	}
	if err := domain.ValidateName("firstName", first); err != nil {
		return err
	}
	if err := domain.ValidateName("lastName", last); err != nil {
		return err
	}
	return nil
}

// Evolve returns the state after ev. Deleting returns the zero State, so a
// deleted author is indistinguishable from one never created.
func Evolve(s State, ev Event) State {
	switch e := ev.(type) {
	case AuthorCreated:
		return State{Code: e.Code, FirstName: e.FirstName, LastName: e.LastName, Version: s.Version + 1}
	case AuthorUpdated:
		s.FirstName, s.LastName = e.FirstName, e.LastName
		s.Version++
		return s
	case AuthorDeleted:
		return State{}
	}
	return s
}

// Version returns the version of s.
func Version(s State) int64 { return s.Version }
