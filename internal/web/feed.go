package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Event is one committed event as the live panel shows it.
type Event struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	// Type is the event's type name (its "type" header, else the decoded
	// type).
	Type string `json:"type"`
	// Version is the aggregate version the event produced (its "version"
	// header; 0 when absent).
	Version int64 `json:"version,omitempty"`
	// MsgID is the id of the command that caused the event.
	MsgID     string    `json:"msgId,omitempty"`
	Timestamp time.Time `json:"timestamp"`
	// Event is the event as the JSON API shows it: {"type": ..., fields}.
	Event json.RawMessage `json:"event,omitempty"`
	// Error says why the value could not be decoded (Event is then empty).
	Error string `json:"error,omitempty"`
}

// Source delivers committed events. Run consumes from the current end of
// the events (new events only) until ctx is done: it calls ready once it
// is positioned, so that every event committed afterwards reaches emit,
// then emit for each event in order. It returns nil when ctx is done and
// an error when it cannot go on (the feed then runs it again).
type Source interface {
	Run(ctx context.Context, ready func(), emit func(Event)) error
}

// Message is what a subscriber receives: a server-sent event's name and
// its data (one line of JSON). The feed hands every subscriber the same
// Message, so Data must not be modified.
type Message struct {
	Name string
	Data []byte
	// frame is the whole server-sent event, built once by the feed and
	// shared by every subscriber's stream; Data points into it.
	frame []byte
}

// newMessage builds m's server-sent event once, with Data inside it, so
// that a fan-out to many streams encodes nothing per stream.
func newMessage(name string, data []byte) Message {
	b := make([]byte, 0, len("event: \ndata: \n\n")+len(name)+len(data))
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	start := len(b)
	b = append(b, data...)
	end := len(b)
	b = append(b, "\n\n"...)
	return Message{Name: name, Data: b[start:end:end], frame: b}
}

// sse returns m as one server-sent event: "event: <Name>", then Data on
// one "data:" line. It is the feed's shared copy when there is one.
func (m Message) sse() []byte {
	if m.frame != nil {
		return m.frame
	}
	return newMessage(m.Name, m.Data).frame
}

// Status is the data of a "status" message.
type Status struct {
	// Live is true once the feed is positioned: every event committed
	// from then on is delivered.
	Live   bool   `json:"live"`
	Detail string `json:"detail,omitempty"`
}

// ErrClosed is returned by Subscribe after Close.
var ErrClosed = errors.New("the live event feed is closed")

// ErrTooManySubscribers is returned by Subscribe when the feed holds
// FeedConfig.MaxSubscribers subscriptions already (dropped ones count until
// they are unsubscribed).
var ErrTooManySubscribers = errors.New("too many live event subscribers")

// FeedConfig tunes a Feed; zero values take the defaults.
type FeedConfig struct {
	// Buffer is how many messages a subscriber may lag behind before it
	// is dropped (default 256).
	Buffer int
	// MaxSubscribers bounds the subscriptions held at once, dropped ones
	// included until they are unsubscribed (default 1000).
	MaxSubscribers int
	// IdleStop is how long the source keeps running without subscribers
	// (default 1 minute).
	IdleStop time.Duration
	// Backoff is the first wait before the source is run again after an
	// error; it doubles up to 30 s (default 1 s).
	Backoff time.Duration
	Logger  *slog.Logger
}

// Feed fans one Source out to many subscribers. The source is started by
// the first subscriber and stopped some time after the last one left, so
// an instance nobody watches consumes nothing. Each message is encoded once
// and handed to every subscriber without waiting for any: a subscriber
// that does not keep up is dropped rather than slowing the others down,
// and keeps its place under MaxSubscribers until it unsubscribes, so a
// stuck client cannot make room for more.
type Feed struct {
	src Source
	cfg FeedConfig

	mu   sync.Mutex
	subs map[*Subscription]struct{} // receiving messages
	// held counts the subscriptions not yet unsubscribed: subs and the
	// dropped ones, whose streams may still be open.
	held    int
	closed  bool
	seq     int // counts the runs of the source
	cur     int // the current run; 0: not running
	cancel  context.CancelFunc
	live    bool
	idle    *time.Timer
	running sync.WaitGroup
}

// NewFeed returns a feed of src; it starts nothing until Subscribe.
func NewFeed(src Source, cfg FeedConfig) *Feed {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	if cfg.MaxSubscribers <= 0 {
		cfg.MaxSubscribers = 1000
	}
	if cfg.IdleStop <= 0 {
		cfg.IdleStop = time.Minute
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Feed{src: src, cfg: cfg, subs: map[*Subscription]struct{}{}}
}

// Subscription is one subscriber's view of the feed.
type Subscription struct {
	c chan Message
	// dropped is set before c is closed; atomic so that a subscriber
	// busy with its backlog can see it is dropped and stop early.
	dropped atomic.Bool
	gone    bool // unsubscribed; under the feed's lock
}

// C delivers the messages; it is closed when the subscriber is dropped
// (see Dropped) or the feed is closed.
func (s *Subscription) C() <-chan Message { return s.c }

// Dropped reports whether the subscriber was dropped for falling too far
// behind. Once it is true, C delivers what was buffered and is closed, and
// the subscriber should go and Unsubscribe.
func (s *Subscription) Dropped() bool { return s.dropped.Load() }

// Subscribe adds a subscriber. Its first message is a "status" one
// telling whether the feed is live yet.
func (f *Feed) Subscribe() (*Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	if f.held >= f.cfg.MaxSubscribers {
		return nil, ErrTooManySubscribers
	}
	s := &Subscription{c: make(chan Message, f.cfg.Buffer)}
	f.subs[s] = struct{}{}
	f.held++
	if f.idle != nil {
		f.idle.Stop()
		f.idle = nil
	}
	if f.cur == 0 {
		f.start()
	}
	detail := "connecting to Kafka"
	if f.live {
		detail = "showing events as they are committed"
	}
	s.c <- statusMessage(f.live, detail)
	return s, nil
}

// Unsubscribe removes s and frees its place under MaxSubscribers; it is
// safe to call more than once.
func (f *Feed) Unsubscribe(s *Subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.gone {
		return
	}
	s.gone = true
	f.held--
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		close(s.c)
	}
	f.maybeIdle()
}

// Subscribers returns the number of subscribers receiving messages (not
// the dropped ones).
func (f *Feed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// Close stops the source, ends every subscription and refuses new ones.
// It waits for the source to stop and may be called more than once.
func (f *Feed) Close() {
	f.mu.Lock()
	f.closed = true
	f.stop()
	for s := range f.subs {
		delete(f.subs, s)
		close(s.c)
	}
	f.mu.Unlock()
	f.running.Wait()
}

// start runs the source in a new goroutine; f.mu is held.
func (f *Feed) start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.seq++
	gen := f.seq
	f.cur, f.cancel, f.live = gen, cancel, false
	f.running.Add(1)
	go func() {
		defer f.running.Done()
		defer cancel()
		f.run(ctx, gen)
	}()
}

// stop cancels the running source, if any; f.mu is held.
func (f *Feed) stop() {
	if f.idle != nil {
		f.idle.Stop()
		f.idle = nil
	}
	if f.cancel != nil {
		f.cancel()
	}
	// Whatever the stopped run still reports is ignored from now on.
	f.cur, f.cancel, f.live = 0, nil, false
}

// maybeIdle arms the idle timer when nobody subscribes; f.mu is held.
func (f *Feed) maybeIdle() {
	if len(f.subs) > 0 || f.cur == 0 || f.closed || f.idle != nil {
		return
	}
	gen := f.cur
	f.idle = time.AfterFunc(f.cfg.IdleStop, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.cur == gen && len(f.subs) == 0 {
			f.idle = nil
			f.stop()
		}
	})
}

// run runs the source until ctx is done, again after each error.
func (f *Feed) run(ctx context.Context, gen int) {
	backoff := f.cfg.Backoff
	for {
		err := f.src.Run(ctx,
			func() { f.setLive(gen, true, "showing events as they are committed") },
			func(e Event) { f.publish(gen, e) })
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the source stopped")
		}
		f.cfg.Logger.Warn("live event feed: consuming the events failed; retrying", "err", err, "in", backoff)
		f.setLive(gen, false, "reconnecting to Kafka: "+err.Error())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (f *Feed) setLive(gen int, live bool, detail string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != gen || f.live == live {
		return
	}
	f.live = live
	f.broadcast(statusMessage(live, detail))
}

func (f *Feed) publish(gen int, e Event) {
	data, err := json.Marshal(e)
	if err != nil {
		f.cfg.Logger.Warn("live event feed: encode event", "err", err, "topic", e.Topic, "offset", e.Offset)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != gen {
		return
	}
	f.broadcast(newMessage("event", data))
}

// broadcast sends m to every subscriber without waiting; one whose
// buffer is full is dropped: its channel is closed, so that it ends its
// stream, but it keeps its place until it unsubscribes. f.mu is held.
func (f *Feed) broadcast(m Message) {
	for s := range f.subs {
		select {
		case s.c <- m:
		default:
			s.dropped.Store(true)
			delete(f.subs, s)
			close(s.c)
		}
	}
	f.maybeIdle()
}

func statusMessage(live bool, detail string) Message {
	b, _ := json.Marshal(Status{Live: live, Detail: detail})
	return newMessage("status", b)
}
