package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
)

// History reads an aggregate's history (eskafka.Processor implements it):
// a Resource whose Reader implements it serves histories and past states.
type History[S, E any] interface {
	History(key string, after int64, limit int, desc bool) (*eskafka.HistoryPage, error)
	StateAt(key string, position int64, at time.Time) (S, *eskafka.Recorded, error)
	DecodeEvent(data []byte) (E, error)
}

// HistoryEvent is one event of GET /{name}/{key}/history.
type HistoryEvent struct {
	// Position is the event's place in the aggregate's whole stream,
	// never reset; Version restarts when the aggregate is created again.
	Position int64     `json:"position"`
	Version  int64     `json:"version"`
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	MsgID    string    `json:"msgId"`
	Subject  string    `json:"subject,omitempty"`
	// Event is the event as the JSON API shows it: {"type": ..., fields}.
	Event json.RawMessage `json:"event"`
}

// HistoryPageView is the answer of GET /{name}/{key}/history.
type HistoryPageView struct {
	Items []HistoryEvent `json:"items"`
	// Total is the number of events the aggregate has had.
	Total int64  `json:"total"`
	Next  string `json:"next,omitempty"`
}

// historyChunk is how many events a history page reads at a time, so that
// the events held at once stay a few MB even when each is large.
const historyChunk = 64

// history serves GET /{name}/{key}/history?limit=&after=&order=asc|desc.
func (res *Resource[S, C, E]) history(w http.ResponseWriter, r *http.Request, k string) {
	hist, ok := res.Reader.(History[S, E])
	if !ok {
		writeProblem(w, problem(http.StatusNotFound, "no history of %s", res.name()))
		return
	}
	limit, cursor, p := pageParams(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	var after int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 1 {
			p := problem(http.StatusBadRequest, "after must be a cursor returned as \"next\" by a previous page")
			p.Field = "after"
			writeProblem(w, p)
			return
		}
		after = n
	}
	desc := false
	switch o := r.URL.Query().Get("order"); o {
	case "", "asc":
	case "desc":
		desc = true
	default:
		p := problem(http.StatusBadRequest, "order must be asc or desc, not %s", quoted(o))
		p.Field = "order"
		writeProblem(w, p)
		return
	}
	// Read in chunks and stop after MaxPageBytes of events, as a list
	// page does: a history is kept forever and outgrows its aggregate
	// (a book's chapters of the largest content added and removed again
	// and again), and a page of MaxLimit such events would be hundreds
	// of MB, all of it in memory at once.
	view := HistoryPageView{Items: []HistoryEvent{}}
	size := 0
	for first := true; ; first = false {
		page, err := hist.History(k, after, min(limit-len(view.Items), historyChunk), desc)
		if first && errors.Is(err, eskafka.ErrNotOwner) && res.peers.forward(w, r, res.ownership(), k) {
			return
		}
		if err != nil {
			writeProblem(w, readProblem(w, err, res.Singular, k))
			return
		}
		if first {
			view.Total = page.Total
		}
		for i, rec := range page.Events {
			he := HistoryEvent{Position: rec.Position, Version: rec.Version, Type: rec.Type, Time: rec.Time(), MsgID: rec.MsgID, Subject: rec.Subject}
			ev, err := hist.DecodeEvent(rec.Data)
			if err == nil {
				he.Event, _, err = res.Events.Encode(ev)
			}
			if err != nil {
				// One unreadable event must not hide the others.
				he.Event, _ = json.Marshal(map[string]string{"type": rec.Type, "error": "this event cannot be decoded: " + err.Error()})
			}
			view.Items = append(view.Items, he)
			if size += len(he.Event); size >= MaxPageBytes {
				if i+1 < len(page.Events) || page.Next > 0 {
					view.Next = encodeCursor(strconv.FormatInt(rec.Position, 10))
				}
				writeJSON(w, http.StatusOK, view)
				return
			}
		}
		if page.Next <= 0 || len(view.Items) >= limit || len(page.Events) == 0 {
			if page.Next > 0 {
				view.Next = encodeCursor(strconv.FormatInt(page.Next, 10))
			}
			break
		}
		after = page.Next
	}
	writeJSON(w, http.StatusOK, view)
}

// stateAt serves GET /{name}/{key}?position=N or ?at=RFC3339: the state as
// of that point of its history.
func (res *Resource[S, C, E]) stateAt(w http.ResponseWriter, r *http.Request, k string) {
	hist, ok := res.Reader.(History[S, E])
	if !ok {
		writeProblem(w, problem(http.StatusBadRequest, "%s have no history to read a past state from", res.name()))
		return
	}
	q := r.URL.Query()
	var position int64
	var at time.Time
	switch {
	case q.Has("position") && q.Has("at"):
		writeProblem(w, problem(http.StatusBadRequest, "give position or at, not both"))
		return
	case q.Has("position"):
		n, err := strconv.ParseInt(q.Get("position"), 10, 64)
		if err != nil || n < 1 {
			p := problem(http.StatusBadRequest, "position must be a positive integer, not %s", quoted(q.Get("position")))
			p.Field = "position"
			writeProblem(w, p)
			return
		}
		position = n
	default:
		t, err := time.Parse(time.RFC3339Nano, q.Get("at"))
		if err != nil {
			p := problem(http.StatusBadRequest, "at must be an RFC 3339 time such as 2026-01-02T15:04:05Z, not %s", quoted(q.Get("at")))
			p.Field = "at"
			writeProblem(w, p)
			return
		}
		at = t
	}
	s, rec, err := hist.StateAt(k, position, at)
	if errors.Is(err, eskafka.ErrNotOwner) && res.peers.forward(w, r, res.ownership(), k) {
		return
	}
	if errors.Is(err, eskafka.ErrNotYet) {
		writeProblem(w, problem(http.StatusNotFound, "%s %s did not exist at that point of its history", res.Singular, quoted(k)))
		return
	}
	if err != nil {
		writeProblem(w, readProblem(w, err, res.Singular, k))
		return
	}
	w.Header().Set("X-Catalog-Position", strconv.FormatInt(rec.Position, 10))
	writeJSON(w, http.StatusOK, res.render(s))
}
