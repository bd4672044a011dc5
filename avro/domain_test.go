package avro_test

import (
	"context"
	"testing"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// The tests' own small domain, shaped as an application's aggregates are
// (the package knows nothing of any application): people, a flat state
// with commands and events about it, and shelves, a state holding a list
// of nested records.

// Person is the state of a person.
type Person struct {
	Code      string `avro:"code"`
	FirstName string `avro:"firstName"`
	LastName  string `avro:"lastName"`
	Version   int64  `avro:"version"`
}

// PersonCommand is a command about a person.
type PersonCommand interface{ isPersonCommand() }

type AddPerson struct {
	Code      string `avro:"code"`
	FirstName string `avro:"firstName"`
	LastName  string `avro:"lastName"`
}

type RenamePerson struct {
	Code      string `avro:"code"`
	FirstName string `avro:"firstName"`
	LastName  string `avro:"lastName"`
}

type RemovePerson struct {
	Code string `avro:"code"`
}

func (AddPerson) isPersonCommand()    {}
func (RenamePerson) isPersonCommand() {}
func (RemovePerson) isPersonCommand() {}

// PersonEvent is an event about a person.
type PersonEvent interface{ isPersonEvent() }

type PersonAdded struct {
	Code      string `avro:"code"`
	FirstName string `avro:"firstName"`
	LastName  string `avro:"lastName"`
}

type PersonRenamed struct {
	Code      string `avro:"code"`
	FirstName string `avro:"firstName"`
	LastName  string `avro:"lastName"`
}

type PersonRemoved struct {
	Code string `avro:"code"`
}

func (PersonAdded) isPersonEvent()   {}
func (PersonRenamed) isPersonEvent() {}
func (PersonRemoved) isPersonEvent() {}

// personEvents is the people's declared list of their events.
func personEvents() []PersonEvent {
	return []PersonEvent{PersonAdded{}, PersonRenamed{}, PersonRemoved{}}
}

// Shelf is the state of a shelf: items in a list of nested records.
type Shelf struct {
	ID         string `avro:"id"`
	Title      string `avro:"title"`
	Owner      string `avro:"owner"`
	Items      []Item `avro:"items"`
	NextItemID int64  `avro:"nextItemId"`
	Version    int64  `avro:"version"`
}

// Item is one item on a shelf.
type Item struct {
	ID      int64  `avro:"id"`
	Title   string `avro:"title"`
	Content string `avro:"content"`
}

// ShelfCommand is a command about a shelf.
type ShelfCommand interface{ isShelfCommand() }

type AddShelf struct {
	ID    string `avro:"id"`
	Title string `avro:"title"`
	Owner string `avro:"owner"`
}

type PutItem struct {
	ID      string `avro:"id"`
	Title   string `avro:"title"`
	Content string `avro:"content"`
}

type RemoveItem struct {
	ID     string `avro:"id"`
	ItemID int64  `avro:"itemId"`
}

func (AddShelf) isShelfCommand()   {}
func (PutItem) isShelfCommand()    {}
func (RemoveItem) isShelfCommand() {}

// ShelfEvent is an event about a shelf.
type ShelfEvent interface{ isShelfEvent() }

type ShelfAdded struct {
	ID    string `avro:"id"`
	Title string `avro:"title"`
	Owner string `avro:"owner"`
}

type ItemPut struct {
	ID      string `avro:"id"`
	ItemID  int64  `avro:"itemId"`
	Title   string `avro:"title"`
	Content string `avro:"content"`
}

type ItemRemoved struct {
	ID     string `avro:"id"`
	ItemID int64  `avro:"itemId"`
}

func (ShelfAdded) isShelfEvent()  {}
func (ItemPut) isShelfEvent()     {}
func (ItemRemoved) isShelfEvent() {}

const (
	peopleNS  = "test.people"
	shelvesNS = "test.shelves"
	// schemaCount is the number of records of the test domain.
	schemaCount = 14
)

// codecs are the codecs of both aggregates of the test domain, as an
// application builds them.
type codecs struct {
	person         *avro.Value[Person]
	personCommands *avro.Union[PersonCommand]
	personEvents   *avro.Union[PersonEvent]
	shelf          *avro.Value[Shelf]
	shelfCommands  *avro.Union[ShelfCommand]
	shelfEvents    *avro.Union[ShelfEvent]
}

// must returns v, panicking on err (a test set-up failure).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newCodecs(t testing.TB, reg avro.Registry) *codecs {
	t.Helper()
	return &codecs{
		person: must(avro.NewValue[Person](reg, peopleNS)),
		personCommands: must(avro.NewUnion[PersonCommand](reg, peopleNS,
			avro.Of[AddPerson](), avro.Of[RenamePerson](), avro.Of[RemovePerson]())),
		personEvents: must(avro.NewUnion[PersonEvent](reg, peopleNS,
			avro.Of[PersonAdded](), avro.Of[PersonRenamed](), avro.Of[PersonRemoved]())),
		shelf: must(avro.NewValue[Shelf](reg, shelvesNS)),
		shelfCommands: must(avro.NewUnion[ShelfCommand](reg, shelvesNS,
			avro.Of[AddShelf](), avro.Of[PutItem](), avro.Of[RemoveItem]())),
		shelfEvents: must(avro.NewUnion[ShelfEvent](reg, shelvesNS,
			avro.Of[ShelfAdded](), avro.Of[ItemPut](), avro.Of[ItemRemoved]())),
	}
}

func (c *codecs) all() []avro.Registrant {
	return []avro.Registrant{c.person, c.personCommands, c.personEvents, c.shelf, c.shelfCommands, c.shelfEvents}
}

func registered(t testing.TB) (*codecs, *schemaregistry.Memory) {
	t.Helper()
	reg := schemaregistry.NewMemory()
	c := newCodecs(t, reg)
	if err := avro.Register(context.Background(), c.all()...); err != nil {
		t.Fatal(err)
	}
	return c, reg
}

// samples are a filled value of every type of the test domain.
var (
	personAdded = PersonAdded{Code: "ada", FirstName: "Ada", LastName: "Lovelace"}
	shelfID     = "3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f"
	fullShelf   = Shelf{
		ID: shelfID, Title: "Notes", Owner: "ada", NextItemID: 4, Version: 9,
		Items: []Item{{ID: 1, Title: "One", Content: "The Analytical Engine weaves algebraic patterns"}, {ID: 2, Title: "Two", Content: "…"}, {ID: 3, Title: "Three", Content: ""}},
	}
)
