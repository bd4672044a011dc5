package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/bookscatalog/catalog/codec/jsoncodec"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
)

// The tests' own domain, so that the resource layer is tested with nothing
// of the catalog's: people, whose plural does not end in a bare "s", with
// nicknames to drop by number (a path value besides the key).

type person struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Nicknames []string `json:"nicknames"`
	Removed   bool     `json:"-"`
	Version   int64    `json:"version"`
}

type personCommand interface{ personID() string }

type addPerson struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type renamePerson struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type removePerson struct {
	ID string `json:"id"`
}

type dropNickname struct {
	ID    string `json:"id"`
	Index int64  `json:"index"`
}

func (c addPerson) personID() string    { return c.ID }
func (c renamePerson) personID() string { return c.ID }
func (c removePerson) personID() string { return c.ID }
func (c dropNickname) personID() string { return c.ID }

type personEvent interface{ isPersonEvent() }

type personAdded struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type personRenamed struct {
	Name string `json:"name"`
}

type personRemoved struct{}

type nicknameDropped struct {
	Index int64 `json:"index"`
}

func (personAdded) isPersonEvent()     {}
func (personRenamed) isPersonEvent()   {}
func (personRemoved) isPersonEvent()   {}
func (nicknameDropped) isPersonEvent() {}

// refusal is a rejection of the tests' domain.
type refusal struct{ code, field, msg string }

func (r *refusal) Error() string          { return r.msg }
func (r *refusal) RejectionCode() string  { return r.code }
func (r *refusal) RejectionField() string { return r.field }

// validName refuses blank names and control or formatting characters.
func validName(name string) error {
	if strings.TrimSpace(name) == "" {
		return &refusal{"invalid", "name", "must not be blank"}
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return &refusal{"invalid", "name", "must not hold control or formatting characters"}
		}
	}
	return nil
}

// validPersonID accepts lower-case words of letters, digits and hyphens.
func validPersonID(id string) error {
	if id == "" || len(id) > 64 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return &refusal{"invalid", "id", "must be lower-case letters, digits and hyphens, such as \"ada\""}
	}
	return nil
}

func decidePerson(s person, c personCommand) ([]personEvent, error) {
	exists := s.Version > 0 && !s.Removed
	if _, ok := c.(addPerson); !ok && !exists {
		return nil, &refusal{"not_found", "", "no such person"}
	}
	switch c := c.(type) {
	case addPerson:
		if exists {
			return nil, &refusal{"already_exists", "", "exists"}
		}
		if err := validName(c.Name); err != nil {
			return nil, err
		}
		return []personEvent{personAdded(c)}, nil
	case renamePerson:
		if err := validName(c.Name); err != nil {
			return nil, err
		}
		return []personEvent{personRenamed{Name: c.Name}}, nil
	case removePerson:
		return []personEvent{personRemoved{}}, nil
	case dropNickname:
		return []personEvent{nicknameDropped{Index: c.Index}}, nil
	}
	return nil, &refusal{"invalid", "type", "unknown command"}
}

func evolvePerson(s person, e personEvent) person {
	s.Version++
	switch e := e.(type) {
	case personAdded:
		s.ID, s.Name, s.Removed = e.ID, e.Name, false
	case personRenamed:
		s.Name = e.Name
	case personRemoved:
		s.Removed = true
	}
	return s
}

func people() es.Aggregate[person, personCommand, personEvent] {
	return es.Aggregate[person, personCommand, personEvent]{
		Name: "people", Decide: decidePerson, Evolve: evolvePerson, Key: personCommand.personID,
		Version: func(s person) int64 { return s.Version },
		Exists:  func(s person) bool { return s.Version > 0 && !s.Removed },
	}
}

type personBody struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
}

// personWrites are POST /people, PUT and DELETE /people/{id}, and DELETE
// /people/{id}/nicknames/{index}.
func personWrites() []Write[person, personCommand, personEvent] {
	return []Write[person, personCommand, personEvent]{
		{Method: http.MethodPost, Status: http.StatusCreated, Command: func(r *WriteRequest) (personCommand, *Problem) {
			var b personBody
			if p := r.Decode(&b); p != nil {
				return nil, p
			}
			if p := Required("id", b.ID, "name", b.Name); p != nil {
				return nil, p
			}
			return addPerson{ID: *b.ID, Name: *b.Name}, nil
		}},
		{Method: http.MethodPut, Path: "/{key}", Status: http.StatusOK, Command: func(r *WriteRequest) (personCommand, *Problem) {
			var b personBody
			if p := r.Decode(&b); p != nil {
				return nil, p
			}
			if b.ID != nil && *b.ID != r.Key {
				p := NewProblem(http.StatusUnprocessableEntity, "id in the body (%s) differs from the path (%s)", Quote(*b.ID), Quote(r.Key))
				p.Field = "id"
				return nil, p
			}
			if p := Required("name", b.Name); p != nil {
				return nil, p
			}
			return renamePerson{ID: r.Key, Name: *b.Name}, nil
		}},
		{Method: http.MethodDelete, Path: "/{key}", Status: http.StatusNoContent, Command: func(r *WriteRequest) (personCommand, *Problem) {
			return removePerson{ID: r.Key}, nil
		}},
		{Method: http.MethodDelete, Path: "/{key}/nicknames/{index}", Status: http.StatusNoContent, Command: func(r *WriteRequest) (personCommand, *Problem) {
			n, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
			if err != nil || n < 1 {
				p := NewProblem(http.StatusBadRequest, "index must be a positive integer, not %s", Quote(r.PathValue("index")))
				p.Field = "index"
				return nil, p
			}
			return dropNickname{ID: r.Key, Index: n}, nil
		}},
	}
}

// peopleResource is the people resource over fakes: commands are decided
// against the empty state, reads find nobody, and the name "nobody" is
// refused by a Precheck.
func peopleResource() *Resource[person, personCommand, personEvent] {
	agg := people()
	events := jsoncodec.NewUnion[personEvent](personAdded{}, personRenamed{}, personRemoved{}, nicknameDropped{})
	return &Resource[person, personCommand, personEvent]{
		Aggregate: agg, Singular: "person", KeyName: "id", ValidKey: validPersonID,
		Writer:   &fakeWriter[person, personCommand, personEvent]{agg: agg, events: events, out: map[string]*eskafka.Result[person, personEvent]{}},
		Reader:   emptyReader[person]{},
		Commands: jsoncodec.NewUnion[personCommand](addPerson{}, renamePerson{}, removePerson{}, dropNickname{}),
		Events:   events,
		Writes:   personWrites(),
		Precheck: func(_ context.Context, c personCommand) (personCommand, *Problem) {
			if a, ok := c.(addPerson); ok && a.Name == "nobody" {
				p := NewProblem(http.StatusUnprocessableEntity, "nobody is not a name")
				p.Field = "name"
				return nil, p
			}
			return c, nil
		},
	}
}

// testConfig configures an API of the people resource over fakes, for
// tests to adjust (see peopleIn).
func testConfig() Config {
	cfg := Config{Health: readyHealth{}, WriteTimeout: time.Second}
	cfg.Handle(peopleResource())
	return cfg
}

// peopleIn returns the people resource of a testConfig.
func peopleIn(cfg Config) *Resource[person, personCommand, personEvent] {
	return cfg.Resources[0].(*Resource[person, personCommand, personEvent])
}
