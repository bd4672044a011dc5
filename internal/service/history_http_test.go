package service_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/auth"
	"github.com/bookscatalog/catalog/internal/config"
)

type historyItem struct {
	Position int64           `json:"position"`
	Version  int64           `json:"version"`
	Type     string          `json:"type"`
	Time     time.Time       `json:"time"`
	MsgID    string          `json:"msgId"`
	Event    json.RawMessage `json:"event"`
}

type historyPage struct {
	Items []historyItem `json:"items"`
	Total int64         `json:"total"`
	Next  string        `json:"next"`
}

// walkHistory reads a key's whole history page by page and returns the
// positions of each page.
func walkHistory(t *testing.T, i *instance, path string, limit int, order string) (pages [][]int64, all []historyItem) {
	t.Helper()
	after := ""
	for {
		q := url.Values{"limit": {fmt.Sprint(limit)}, "order": {order}}
		if after != "" {
			q.Set("after", after)
		}
		var p historyPage
		i.get(path+"/history?"+q.Encode()).expect(t, http.StatusOK, &p)
		var ps []int64
		for _, it := range p.Items {
			ps = append(ps, it.Position)
		}
		pages, all = append(pages, ps), append(all, p.Items...)
		if p.Next == "" {
			return pages, all
		}
		after = p.Next
	}
}

// An author's whole life, deleted and created again: its history both ways,
// its states as of each point, the same bytes after the stores are rebuilt
// from the topics, and from another instance (forwarded to the owner).
func TestAuthorHistory(t *testing.T) {
	h := newHarness(t)
	inst := h.start()
	step := func(method, path string, body any, status int) {
		t.Helper()
		inst.do(method, path, body, nil).expect(t, status, nil)
		time.Sleep(3 * time.Millisecond) // distinct commit times for as-of by time
	}
	step(http.MethodPost, "/authors", map[string]string{"code": "anne", "firstName": "Anne", "lastName": "Elliot"}, http.StatusCreated)
	step(http.MethodPut, "/authors/anne", map[string]string{"firstName": "Anne", "lastName": "Wentworth"}, http.StatusOK)
	step(http.MethodDelete, "/authors/anne", nil, http.StatusNoContent)
	step(http.MethodPost, "/authors", map[string]string{"code": "anne", "firstName": "Anne", "lastName": "Again"}, http.StatusCreated)

	pages, all := walkHistory(t, inst, "/authors/anne", 3, "asc")
	if fmt.Sprint(pages) != "[[1 2 3] [4]]" {
		t.Fatalf("pages oldest first: %v", pages)
	}
	var types []string
	var versions []int64
	for _, it := range all {
		types, versions = append(types, it.Type), append(versions, it.Version)
	}
	if fmt.Sprint(types) != "[AuthorCreated AuthorUpdated AuthorDeleted AuthorCreated]" || fmt.Sprint(versions) != "[1 2 3 1]" {
		t.Fatalf("types %v versions %v", types, versions)
	}
	if !bytes.Contains(all[1].Event, []byte(`"lastName":"Wentworth"`)) || all[0].MsgID == "" {
		t.Fatalf("event payload %s msgId %q", all[1].Event, all[0].MsgID)
	}
	if pages, _ := walkHistory(t, inst, "/authors/anne", 3, "desc"); fmt.Sprint(pages) != "[[4 3 2] [1]]" {
		t.Fatalf("pages newest first: %v", pages)
	}

	// As of a position and of a time.
	var a authorView
	inst.get("/authors/anne?position=2").expect(t, http.StatusOK, &a)
	if a.LastName != "Wentworth" || a.Version != 2 {
		t.Fatalf("as of position 2: %+v", a)
	}
	inst.get("/authors/anne?position=3").expectProblem(t, http.StatusNotFound, "")
	inst.get("/authors/anne?at="+url.QueryEscape(all[0].Time.Format(time.RFC3339Nano))).expect(t, http.StatusOK, &a)
	if a.LastName != "Elliot" {
		t.Fatalf("as of the first event's time: %+v", a)
	}
	inst.get("/authors/anne?at="+url.QueryEscape(all[0].Time.Add(-time.Millisecond).Format(time.RFC3339Nano))).expectProblem(t, http.StatusNotFound, "")
	inst.get("/authors/anne?at="+url.QueryEscape(all[2].Time.Format(time.RFC3339Nano))).expectProblem(t, http.StatusNotFound, "")
	inst.get("/authors/anne?at=yesterday").expectProblem(t, http.StatusBadRequest, "at")
	inst.get("/authors/anne?position=0").expectProblem(t, http.StatusBadRequest, "position")
	inst.get("/authors/anne/history?order=sideways").expectProblem(t, http.StatusBadRequest, "order")
	inst.get("/authors/nobody/history").expectProblem(t, http.StatusNotFound, "")

	want := inst.get("/authors/anne/history").Body
	pastWant := inst.get("/authors/anne?position=2").Body

	// Stores deleted: rebuilt from the events topic, byte for byte.
	inst.stop()
	inst = h.startWithoutStores()
	if got := inst.get("/authors/anne/history").Body; !bytes.Equal(got, want) {
		t.Fatalf("after a restore:\n%s\nwant\n%s", got, want)
	}
	if got := inst.get("/authors/anne?position=2").Body; !bytes.Equal(got, pastWant) {
		t.Fatalf("past state after a restore: %s, want %s", got, pastWant)
	}

	// Another instance shares the partitions: every answer is the same
	// from both, whoever owns the key.
	other := h.startIn(filepath.Join(t.TempDir(), "second"))
	poll(t, "both instances to own partitions", func() error {
		var m struct {
			Instances []string `json:"instances"`
		}
		if err := json.Unmarshal(inst.get("/metadata").Body, &m); err != nil || len(m.Instances) != 2 {
			return fmt.Errorf("instances %v (%v)", m.Instances, err)
		}
		return nil
	})
	for _, i := range []*instance{inst, other} {
		poll(t, "the history from "+i.URL, func() error {
			if got := i.get("/authors/anne/history").Body; !bytes.Equal(got, want) {
				return fmt.Errorf("got %s", got)
			}
			return nil
		})
		if got := i.get("/authors/anne?position=2").Body; !reflect.DeepEqual(got, pastWant) {
			t.Fatalf("%s: past state %s, want %s", i.URL, got, pastWant)
		}
	}
}

// The history says who did what: the writer's subject on their own events,
// and on the events of the reaction their deletion of an author caused.
func TestHistoryShowsWhoDidWhat(t *testing.T) {
	path, tokens := tokenFile(t)
	h := newHarness(t, func(h *harness) {
		h.Configure = func(c *config.Config) { c.AuthTokensFile = path }
	})
	i := h.start()
	w := bearer(tokens[auth.RoleWriter])
	i.do(http.MethodPost, "/authors", authorBody("ann", "Ann", "Radcliffe"), w).expect(t, http.StatusCreated, nil)
	var b struct {
		ID string `json:"id"`
	}
	i.do(http.MethodPost, "/books", map[string]any{"title": "Udolpho", "authorCode": "ann"}, w).expect(t, http.StatusCreated, &b)
	// Deleted once the read model lists the book, the reaction follows
	// the deletion itself and carries its subject. (A book linked after
	// its author's deletion is unassigned by the link, with no subject.)
	poll(t, "the author's books to list the book", func() error {
		if r := i.get("/authors/ann/books"); !bytes.Contains(r.Body, []byte(b.ID)) {
			return fmt.Errorf("last: %s", r)
		}
		return nil
	})
	i.do(http.MethodDelete, "/authors/ann", nil, w).expect(t, http.StatusNoContent, nil)
	poll(t, "the reaction in the book's history", func() error {
		var p struct {
			Items []struct {
				Type    string `json:"type"`
				Subject string `json:"subject"`
			} `json:"items"`
		}
		if err := json.Unmarshal(i.get("/books/"+b.ID+"/history").Body, &p); err != nil {
			return err
		}
		var got []string
		for _, it := range p.Items {
			got = append(got, it.Type+"/"+it.Subject)
		}
		if fmt.Sprint(got) != "[BookCreated/writer-subject BookAuthorSet/writer-subject BookAuthorSet/writer-subject]" {
			return fmt.Errorf("history %v", got)
		}
		return nil
	})
}
