package eskafka_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/store/memstore"
)

// positions returns the positions of a page's events.
func positions(p *eskafka.HistoryPage) []int64 {
	out := []int64{}
	for _, e := range p.Events {
		out = append(out, e.Position)
	}
	return out
}

// The history index: every event of a key, deleted and created again, in
// pages both ways; states as of a position and a time; and the same
// answers, byte for byte, after the store is rebuilt from the events topic.
func TestHistory(t *testing.T) {
	cfg := newConfig(t)
	e := start(t, cfg)
	e.do(open{"h"}, eskafka.SendOptions{})
	e.do(add{"h", 2}, eskafka.SendOptions{})
	time.Sleep(5 * time.Millisecond) // distinct commit times, for as-of by time
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	e.do(add{"h", 3}, eskafka.SendOptions{})
	e.do(shut{"h"}, eskafka.SendOptions{})
	afterShut := time.Now()
	time.Sleep(5 * time.Millisecond)
	e.do(open{"h"}, eskafka.SendOptions{})
	e.do(add{"h", 7}, eskafka.SendOptions{})
	e.do(open{"other"}, eskafka.SendOptions{})

	page, err := e.proc.History("h", 0, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 6 || !reflect.DeepEqual(positions(page), []int64{1, 2, 3, 4, 5, 6}) || page.Next != 0 {
		t.Fatalf("history: total %d positions %v next %d", page.Total, positions(page), page.Next)
	}
	var versions []int64
	var types []string
	for _, ev := range page.Events {
		versions = append(versions, ev.Version)
		types = append(types, ev.Type)
		if ev.MsgID == "" || ev.TimeMillis == 0 || len(ev.Data) == 0 {
			t.Fatalf("incomplete entry %+v", ev)
		}
	}
	if !reflect.DeepEqual(versions, []int64{1, 2, 3, 4, 1, 2}) || !reflect.DeepEqual(types, []string{"opened", "added", "added", "closed", "opened", "added"}) {
		t.Fatalf("versions %v types %v", versions, types)
	}
	// Pages of two, both ways.
	var asc, desc [][]int64
	for after := int64(0); ; {
		p, err := e.proc.History("h", after, 2, false)
		if err != nil {
			t.Fatal(err)
		}
		asc = append(asc, positions(p))
		if p.Next == 0 {
			break
		}
		after = p.Next
	}
	for after := int64(0); ; {
		p, err := e.proc.History("h", after, 4, true)
		if err != nil {
			t.Fatal(err)
		}
		desc = append(desc, positions(p))
		if p.Next == 0 {
			break
		}
		after = p.Next
	}
	if fmt.Sprint(asc) != "[[1 2] [3 4] [5 6]]" || fmt.Sprint(desc) != "[[6 5 4 3] [2 1]]" {
		t.Fatalf("pages: asc %v desc %v", asc, desc)
	}
	// As of a position and of a time.
	if st, rec, err := e.proc.StateAt("h", 3, time.Time{}); err != nil || st.Total != 5 || rec.Position != 3 {
		t.Fatalf("as of 3: %+v %+v %v", st, rec, err)
	}
	if _, _, err := e.proc.StateAt("h", 4, time.Time{}); !errors.Is(err, eskafka.ErrNotYet) {
		t.Fatalf("as of the deletion: %v", err)
	}
	if st, _, err := e.proc.StateAt("h", 0, mid); err != nil || st.Total != 2 {
		t.Fatalf("as of %v: %+v %v", mid, st, err)
	}
	if _, _, err := e.proc.StateAt("h", 0, afterShut); !errors.Is(err, eskafka.ErrNotYet) {
		t.Fatalf("as of after the deletion: %v", err)
	}
	if _, _, err := e.proc.StateAt("h", 0, time.UnixMilli(page.Events[0].TimeMillis-1)); !errors.Is(err, eskafka.ErrNotYet) {
		t.Fatalf("before creation: %v", err)
	}
	if _, err := e.proc.History("nobody", 0, 10, false); !errors.Is(err, eskafka.ErrNotFound) {
		t.Fatalf("no events: %v", err)
	}

	// Rebuilt from the events topic: the same answers.
	e.stop()
	cfg.Store = memstore.New()
	e = start(t, cfg)
	e.waitReady()
	again, err := e.proc.History("h", 0, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, page) {
		t.Fatalf("after a restore:\n%+v\nwant\n%+v", again, page)
	}
	if res := e.do(add{"h", 1}, eskafka.SendOptions{}); !res.Accepted() {
		t.Fatal(res.Rejection)
	}
	if p, _ := e.proc.History("h", 6, 10, false); p == nil || !reflect.DeepEqual(positions(p), []int64{7}) {
		t.Fatalf("position after a restore: %+v", p)
	}
}
