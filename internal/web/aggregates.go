package web

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Aggregate describes one registered aggregate to the page: what to call
// it, where its JSON API is, which forms the generic views show, how to
// label its events, and where they are committed. The page's navigation,
// links, views, timelines and live events are drawn from these
// descriptions alone; a service registers one per aggregate it serves.
//
// Labels are templates: "{field}" is replaced by that field of the
// resource or event. Where a list of templates is given, the first whose
// fields are all present and not empty is used, so that a label can
// depend on whether a field is set ("Assigned to {owner}", then
// "Unassigned").
type Aggregate struct {
	// Name is the aggregate's plural name, as in its path: "orders". It
	// names its page (#/orders) and its events in the live panel.
	Name string `json:"name"`
	// Singular is what one of them is called in messages: "order".
	Singular string `json:"singular"`
	// Title heads its list and names it in the navigation (default: Name
	// with a capital letter).
	Title string `json:"title"`
	// Key is the field of a resource that holds its key: "code", "id".
	Key string `json:"key"`
	// ShortKey shortens the key where space is short (long generated ids).
	ShortKey bool `json:"shortKey,omitempty"`
	// Path is the JSON API's collection path (default "/" + Name); one
	// resource is at Path/{key}, its history at Path/{key}/history.
	Path string `json:"path"`
	// Label names one resource in headings, lists and messages (default:
	// its key).
	Label []string `json:"label,omitempty"`
	// Fields are the resource's fields that the generic views show and
	// edit, in order (the key field included, if it is to be entered).
	Fields []Field `json:"fields,omitempty"`
	// Forms says which forms the generic views offer.
	Forms Forms `json:"forms"`
	// Events labels each event type, by name.
	Events []EventLabel `json:"events,omitempty"`

	// Topic is the aggregate's events topic, which the live panel reads.
	Topic string `json:"-"`
	// Decode turns a record value of Topic into the event as the JSON API
	// shows it.
	Decode Decoder `json:"-"`
}

// Field is one field of a resource, as the generic views show it.
type Field struct {
	// Name is the field's name in the JSON API.
	Name string `json:"name"`
	// Label names it on the page (default: Name).
	Label string `json:"label"`
	// Hint explains it under its input.
	Hint string `json:"hint,omitempty"`
	// Optional fields may be left empty (they are then not sent).
	Optional bool `json:"optional,omitempty"`
	// Multiline fields are entered in a text area.
	Multiline bool `json:"multiline,omitempty"`
	// Create and Update say whether the field is entered when creating
	// one, and when editing one.
	Create bool `json:"create,omitempty"`
	Update bool `json:"update,omitempty"`
}

// Forms says which forms the generic views offer: creating one with the
// fields marked Create (POST Path), editing one with those marked Update
// (PUT Path/{key}, If-Match its version) and deleting one (DELETE
// Path/{key}). Each verb names the form's button and its messages.
type Forms struct {
	Create bool `json:"create,omitempty"`
	Update bool `json:"update,omitempty"`
	// UpdateLabel is the edit form's button (default "Save").
	UpdateLabel string `json:"updateLabel,omitempty"`
	Delete      bool   `json:"delete,omitempty"`
	// DeleteVerb and Deleted say how deleting one is called: "Delete"
	// and "deleted" (the defaults), or "Remove" and "removed".
	DeleteVerb string `json:"deleteVerb,omitempty"`
	Deleted    string `json:"deleted,omitempty"`
	// DeleteWarning is added to the question asked before deleting one.
	DeleteWarning string `json:"deleteWarning,omitempty"`
}

// EventLabel says how the page shows one type of event: in a timeline
// (Describe: what it changed, in a few words) and in the live panel
// (Summary, beside its type name). Both are lists of templates over the
// event's fields; an event type without a label is shown by its name.
type EventLabel struct {
	Type     string   `json:"type"`
	Describe []string `json:"describe,omitempty"`
	Summary  []string `json:"summary,omitempty"`
}

// nameRE is what an aggregate's name may be: it is a path segment and a
// part of the page's addresses.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// withDefaults returns a with its defaults filled in, or an error saying
// what is wrong with it.
func (a Aggregate) withDefaults() (Aggregate, error) {
	if !nameRE.MatchString(a.Name) {
		return a, fmt.Errorf("aggregate name %q: want lower-case letters, digits and dashes", a.Name)
	}
	if a.Singular == "" || a.Key == "" {
		return a, fmt.Errorf("aggregate %s: Singular and Key are required", a.Name)
	}
	if a.Title == "" {
		a.Title = strings.ToUpper(a.Name[:1]) + a.Name[1:]
	}
	if a.Path == "" {
		a.Path = "/" + a.Name
	}
	if a.Forms.DeleteVerb == "" {
		a.Forms.DeleteVerb = "Delete"
	}
	if a.Forms.Deleted == "" {
		a.Forms.Deleted = "deleted"
	}
	if a.Forms.UpdateLabel == "" {
		a.Forms.UpdateLabel = "Save"
	}
	fields := make([]Field, len(a.Fields))
	for i, f := range a.Fields {
		if f.Label == "" {
			f.Label = f.Name
		}
		fields[i] = f
	}
	a.Fields = fields
	return a, nil
}

// aggregates checks aggs and fills in their defaults.
func aggregates(aggs []Aggregate) ([]Aggregate, error) {
	out := make([]Aggregate, 0, len(aggs))
	seen := map[string]bool{}
	for _, a := range aggs {
		a, err := a.withDefaults()
		if err != nil {
			return nil, err
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("aggregate %s registered twice", a.Name)
		}
		seen[a.Name] = true
		out = append(out, a)
	}
	return out, nil
}

// pageConfig is what the page is told of the application: the JSON in
// its body's data-app attribute.
type pageConfig struct {
	Title      string      `json:"title"`
	Stream     string      `json:"stream"`
	TokenHint  string      `json:"tokenHint,omitempty"`
	Aggregates []Aggregate `json:"aggregates"`
}

func (c pageConfig) json() (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode the page's configuration: %w", err)
	}
	return string(b), nil
}
