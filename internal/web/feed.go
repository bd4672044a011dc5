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
	// Aggregate is the Name of the aggregate whose events topic holds
	// the event: the page shows it under that name.
	Aggregate string `json:"aggregate,omitempty"`
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
	// Position is the event's place in its aggregate's whole stream
	// (its "position" header; 0 when absent): 1, 2, 3…, never reset.
	Position int64 `json:"position,omitempty"`
	// MsgID is the id of the command that caused the event.
	MsgID string `json:"msgId,omitempty"`
	// Subject is who sent that command, when known (its "subject"
	// header).
	Subject   string    `json:"subject,omitempty"`
	Timestamp time.Time `json:"timestamp"`
	// Event is the event as the JSON API shows it: {"type": ..., fields}.
	Event json.RawMessage `json:"event,omitempty"`
	// Error says why the value could not be decoded (Event is then empty).
	Error string `json:"error,omitempty"`
}

// Source delivers committed events. Run consumes from the current end of
// the events until ctx is done: it calls ready once it is positioned, so
// that every event committed afterwards reaches emit, then emit for each
// event in order. It hands ready the recent past, if it reads any: up to
// the last few events committed before that position, oldest first,
// which may repeat ones an earlier run emitted. It returns nil when ctx is
// done and an error when it cannot go on (the feed then runs it again).
type Source interface {
	Run(ctx context.Context, ready func(recent []Event), emit func(Event)) error
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
	// Recent is how many of the last events the feed keeps to send a new
	// subscriber first (default 50; negative: none).
	Recent int
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
//
// The feed keeps the last FeedConfig.Recent events, so that a page opened
// now shows what happened just before: a new subscriber gets them first,
// as "recent" messages, then the live "event" ones. The recent past a
// source reads when it starts (see Source) fills them after a restart.
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
	// recent is a ring of the "recent" messages of the last cfg.Recent
	// events: once full, the oldest is at recentNext, where the next one
	// goes.
	recent     []Message
	recentNext int
	// published is the offset of the last event published per events
	// partition (one entry per partition of the topics), so that the
	// recent events a source hands over when it starts again are
	// published only if they are new.
	published map[partitionOf]int64
}

// partitionOf names a partition of an events topic.
type partitionOf struct {
	topic     string
	partition int32
}

// NewFeed returns a feed of src; it starts nothing until Subscribe.
func NewFeed(src Source, cfg FeedConfig) *Feed {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	if cfg.MaxSubscribers <= 0 {
		cfg.MaxSubscribers = 1000
	}
	if cfg.Recent == 0 {
		cfg.Recent = 50
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
	return &Feed{src: src, cfg: cfg, subs: map[*Subscription]struct{}{},
		recent: make([]Message, 0, max(cfg.Recent, 0)), published: map[partitionOf]int64{}}
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
// telling whether the feed is live yet, then come the recent events (the
// last FeedConfig.Recent, oldest first) as "recent" messages, then the
// live ones.
func (f *Feed) Subscribe() (*Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	if f.held >= f.cfg.MaxSubscribers {
		return nil, ErrTooManySubscribers
	}
	// The recent events come on top of the buffer: a subscriber is
	// dropped for lagging behind the live events, not for its backlog.
	s := &Subscription{c: make(chan Message, f.cfg.Buffer+len(f.recent))}
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
	for i := range f.recent {
		s.c <- f.recent[(f.recentNext+i)%len(f.recent)]
	}
	return s, nil
}

// reserve raises the subscriptions the feed holds at once to at least n.
func (f *Feed) reserve(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg.MaxSubscribers = max(f.cfg.MaxSubscribers, n)
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
			func(recent []Event) {
				// A run that got going starts the backoff again:
				// a blip after hours of health waits the first
				// backoff, not the last one.
				backoff = f.cfg.Backoff
				f.ready(gen, recent)
			},
			func(e Event) { f.publish(gen, e) })
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the source stopped")
		}
		f.cfg.Logger.Warn("live event feed: consuming the events failed; retrying", "err", err, "in", backoff)
		// The pages are told only that the feed reconnects: the error
		// is the operator's (it names the brokers' internal addresses,
		// a SASL or TLS failure), and a stream is open to anyone who
		// may read.
		f.setLive(gen, false, "reconnecting to Kafka")
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

// ready publishes the recent events of run gen that the feed has not
// published yet, as "recent" messages (they were committed before the
// feed went live: news to a page only in that it did not show them), then
// tells the subscribers the feed is live.
func (f *Feed) ready(gen int, recent []Event) {
	data := make([][]byte, len(recent))
	for i, e := range recent {
		data[i] = f.encode(e)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != gen {
		return
	}
	// Each is checked against what was published before this run's
	// recent past: within it, the order is by time, not offset.
	var fresh []Event
	for i, e := range recent {
		if last, ok := f.published[partitionOf{e.Topic, e.Partition}]; data[i] == nil || ok && e.Offset <= last {
			continue
		}
		fresh = append(fresh, e)
		m := newMessage("recent", data[i])
		f.remember(m)
		f.broadcast(m)
	}
	for _, e := range fresh {
		f.published[partitionOf{e.Topic, e.Partition}] = max(f.published[partitionOf{e.Topic, e.Partition}], e.Offset)
	}
	if !f.live {
		f.live = true
		f.broadcast(statusMessage(true, "showing events as they are committed"))
	}
}

func (f *Feed) publish(gen int, e Event) {
	data := f.encode(e)
	if data == nil {
		return
	}
	// Both frames are built before the lock is taken, once for every
	// subscriber: the live one, and the one kept for later subscribers.
	live, kept := newMessage("event", data), newMessage("recent", data)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != gen {
		return
	}
	p := partitionOf{e.Topic, e.Partition}
	if last, ok := f.published[p]; !ok || e.Offset > last {
		f.published[p] = e.Offset
	}
	f.remember(kept)
	f.broadcast(live)
}

// encode returns e as JSON, or nil (logged) if it cannot be encoded.
func (f *Feed) encode(e Event) []byte {
	data, err := json.Marshal(e)
	if err != nil {
		f.cfg.Logger.Warn("live event feed: encode event", "err", err, "topic", e.Topic, "offset", e.Offset)
		return nil
	}
	return data
}

// remember keeps m among the recent messages, in place of the oldest once
// there are cfg.Recent; f.mu is held.
func (f *Feed) remember(m Message) {
	switch {
	case f.cfg.Recent <= 0:
	case len(f.recent) < f.cfg.Recent:
		f.recent = append(f.recent, m)
	default:
		f.recent[f.recentNext] = m
		f.recentNext = (f.recentNext + 1) % len(f.recent)
	}
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
