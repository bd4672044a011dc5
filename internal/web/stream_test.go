package web

import (
	"encoding/json"
	"testing"
)

func TestFeedSharesFrames(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{})
	t.Cleanup(feed.Close)
	a, _ := feed.Subscribe()
	b, _ := feed.Subscribe()
	run := src.next(t)
	<-a.C()
	<-b.C()
	run.emit(benchEvent())
	ma, mb := <-a.C(), <-b.C()
	fa, fb := ma.sse(), mb.sse()
	if &fa[0] != &fb[0] {
		t.Error("the subscribers got an event encoded twice, want one frame shared")
	}
	if want := "event: event\ndata: " + string(ma.Data) + "\n\n"; string(fa) != want {
		t.Errorf("frame = %q, want %q", fa, want)
	}
	if !json.Valid(ma.Data) {
		t.Errorf("data %s is not JSON", ma.Data)
	}
}

// TestStreamEncodesEachEventOnce counts the allocations of an event
// delivered through the stream handler to many subscribers: encoding it
// for each would take one or more per subscriber.
func TestStreamEncodesEachEventOnce(t *testing.T) {
	const subscribers = 100
	f := newFanout(t, subscribers, Config{})
	e := benchEvent()
	var sent int64
	allocs := testing.AllocsPerRun(20, func() {
		f.run.emit(e)
		sent++
		f.await(t, sent)
	})
	if allocs >= subscribers/4 {
		t.Errorf("%.0f allocations per event delivered to %d subscribers, want a few: the event is encoded per subscriber", allocs, subscribers)
	}
}

func TestFeedDroppedSubscriberHoldsItsPlace(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{Buffer: 1, MaxSubscribers: 1})
	t.Cleanup(feed.Close)
	slow, err := feed.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	run := src.next(t)
	run.emit(Event{Key: "k"}) // the status fills the buffer: dropped
	if !slow.Dropped() || feed.Subscribers() != 0 {
		t.Fatalf("dropped %v, %d subscribers; want the slow one dropped", slow.Dropped(), feed.Subscribers())
	}
	if _, err := feed.Subscribe(); err != ErrTooManySubscribers {
		t.Fatalf("Subscribe while a dropped subscriber has not unsubscribed: %v, want ErrTooManySubscribers", err)
	}
	feed.Unsubscribe(slow)
	if _, err := feed.Subscribe(); err != nil {
		t.Errorf("Subscribe after the dropped one unsubscribed: %v", err)
	}
}
