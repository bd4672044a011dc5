package web

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// offsetsOf reads the offsets of messages named name from sub until a
// message with another name, which it returns too.
func offsetsOf(t *testing.T, sub *Subscription, name string) ([]int64, Message) {
	t.Helper()
	var got []int64
	for {
		m := recv(t, sub)
		if m.Name != name {
			return got, m
		}
		var e Event
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatalf("%s message %s: %v", name, m.Data, err)
		}
		got = append(got, e.Offset)
	}
}

// recv returns sub's next message, failing after 10 s.
func recv(t *testing.T, sub *Subscription) Message {
	t.Helper()
	select {
	case m := <-sub.C():
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10 s")
		return Message{}
	}
}

func span64(from, to int64) []int64 {
	var s []int64
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// TestFeedSendsRecentEventsFirst: a subscriber arriving after n events
// gets the last min(n, 50) of them, oldest first, then the live ones.
func TestFeedSendsRecentEventsFirst(t *testing.T) {
	for _, n := range []int64{0, 3, 50, 51, 120} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			src := newFakeSource()
			feed := NewFeed(src, FeedConfig{})
			t.Cleanup(feed.Close)
			first, _ := feed.Subscribe()
			run := src.next(t)
			run.ready()
			for i := range n {
				run.emit(Event{Topic: "catalog.authors.events", Key: "k", Offset: i})
			}
			feed.Unsubscribe(first)

			late, err := feed.Subscribe()
			if err != nil {
				t.Fatal(err)
			}
			if m := recv(t, late); m.Name != "status" || !strings.Contains(string(m.Data), `"live":true`) {
				t.Fatalf("first message %s %s, want the live status", m.Name, m.Data)
			}
			run.emit(Event{Topic: "catalog.authors.events", Key: "k", Offset: n})
			got, next := offsetsOf(t, late, "recent")
			if want := span64(max(0, n-50), n); !slices.Equal(got, want) {
				t.Errorf("recent offsets %v, want %v", got, want)
			}
			if next.Name != "event" || !strings.Contains(string(next.Data), fmt.Sprintf(`"offset":%d,`, n)) {
				t.Errorf("then %s %s, want the live event %d", next.Name, next.Data, n)
			}
		})
	}
}

// TestFeedRecentEventsDoNotDropASubscriber: the recent events come on top
// of a subscriber's buffer, so that one with a small buffer is not
// dropped for its backlog.
func TestFeedRecentEventsDoNotDropASubscriber(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{Buffer: 2})
	t.Cleanup(feed.Close)
	first, _ := feed.Subscribe()
	run := src.next(t)
	for i := range int64(50) {
		run.emit(Event{Offset: i})
		if i == 0 {
			feed.Unsubscribe(first)
		}
	}
	sub, _ := feed.Subscribe()
	run.emit(Event{Offset: 50}) // the buffer's second place; the status took the first
	if sub.Dropped() {
		t.Fatal("a new subscriber was dropped for the recent events")
	}
	recv(t, sub) // status
	got, next := offsetsOf(t, sub, "recent")
	if !slices.Equal(got, span64(0, 50)) || next.Name != "event" {
		t.Errorf("recent %v then %s, want 0…49 then the live event", got, next.Name)
	}
}

// TestFeedPublishesASourcesRecentPastOnce: the recent past a source hands
// over when it starts goes to the subscribers and the recent events, but
// only what was not published before: a source started again after an
// idle stop or a failure reads back events the feed has already seen.
func TestFeedPublishesASourcesRecentPastOnce(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{IdleStop: time.Millisecond})
	t.Cleanup(feed.Close)
	ev := func(p int32, off int64) Event {
		return Event{Topic: "catalog.books.events", Partition: p, Offset: off, Key: fmt.Sprintf("p%d-%d", p, off)}
	}
	sub, _ := feed.Subscribe()
	run := src.next(t)
	if m := recv(t, sub); !strings.Contains(string(m.Data), `"live":false`) {
		t.Fatalf("first status %s, want not live", m.Data)
	}
	// By time, not by offset: partition 1's event is the oldest.
	run.readyWith([]Event{ev(1, 7), ev(0, 3), ev(0, 4)})
	keys := func(sub *Subscription, name string, n int) []string {
		t.Helper()
		var got []string
		for range n {
			m := recv(t, sub)
			var e Event
			if err := json.Unmarshal(m.Data, &e); m.Name != name || err != nil {
				t.Fatalf("got %s %s, want a %q message", m.Name, m.Data, name)
			}
			got = append(got, e.Key)
		}
		return got
	}
	if got := keys(sub, "recent", 3); !slices.Equal(got, []string{"p1-7", "p0-3", "p0-4"}) {
		t.Errorf("the recent past: %v", got)
	}
	if m := recv(t, sub); m.Name != "status" || !strings.Contains(string(m.Data), `"live":true`) {
		t.Fatalf("after the recent past: %s %s, want the live status", m.Name, m.Data)
	}
	run.emit(ev(0, 5))
	keys(sub, "event", 1)

	// Stopped while nobody watches, started again by a new subscriber.
	feed.Unsubscribe(sub)
	waitFor(t, func() bool { return run.ctx.Err() != nil }, "the idle source to stop")
	sub, _ = feed.Subscribe()
	again := src.next(t)
	recv(t, sub) // status
	if got := keys(sub, "recent", 4); !slices.Equal(got, []string{"p1-7", "p0-3", "p0-4", "p0-5"}) {
		t.Errorf("the recent events: %v", got)
	}
	again.readyWith([]Event{ev(0, 4), ev(1, 7), ev(0, 5), ev(1, 8), ev(0, 6)})
	if got := keys(sub, "recent", 2); !slices.Equal(got, []string{"p1-8", "p0-6"}) {
		t.Errorf("the recent past read again: %v, want only what is new", got)
	}
	if m := recv(t, sub); m.Name != "status" {
		t.Errorf("got %s %s, want the live status", m.Name, m.Data)
	}
	late, _ := feed.Subscribe()
	recv(t, late) // status
	if got := keys(late, "recent", 6); !slices.Equal(got, []string{"p1-7", "p0-3", "p0-4", "p0-5", "p1-8", "p0-6"}) {
		t.Errorf("a later subscriber's recent events: %v", got)
	}
	select {
	case m := <-late.C():
		t.Errorf("unexpected %s %s", m.Name, m.Data)
	default:
	}
}

// TestStreamSendsRecentEvents: the stream writes the recent events as
// "recent" server-sent events after the status, before the live ones.
func TestStreamSendsRecentEvents(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{})
	t.Cleanup(feed.Close)
	sub, _ := feed.Subscribe()
	run := src.next(t)
	run.ready()
	run.emit(Event{Topic: "catalog.authors.events", Key: "before-the-page", Type: "AuthorCreated"})
	feed.Unsubscribe(sub)

	srv := newServer(t, Config{Feed: feed, KeepAlive: time.Hour})
	s := openStream(t, srv.URL+StreamPath)
	if e := s.nextEvent(); e.name != "status" {
		t.Fatalf("first event %+v, want status", e)
	}
	if e := s.nextEvent(); e.name != "recent" || !strings.Contains(e.data, `"key":"before-the-page"`) {
		t.Fatalf("then %+v, want the recent event", e)
	}
	run.emit(Event{Topic: "catalog.authors.events", Key: "live"})
	if e := s.nextEvent(); e.name != "event" || !strings.Contains(e.data, `"key":"live"`) {
		t.Fatalf("then %+v, want the live event", e)
	}
}
