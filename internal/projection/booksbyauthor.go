// Package projection runs the catalog's read models as exactly-once stages
// on Kafka. Books by author is built in two stages (see the domain package
// booksbyauthor): "links" follows books and routes link changes through a
// repartition topic keyed by author code; "view" keeps one entry per author
// code from author events and those link changes, and reacts to a deleted
// author by sending SetBookAuthor commands that unassign their books, in
// the same transaction that consumes the deletion.
package projection

import (
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/domain/booksbyauthor"
)

// Codecs are the codecs of the records the read model reads and writes.
type Codecs struct {
	AuthorEvents es.Codec[author.Event]
	BookEvents   es.Codec[book.Event]
	BookCommands es.Codec[book.Command]
	// Links encodes step one's state per book, Changes the link changes
	// on the repartition topic, Views the views per author code.
	Links   es.Codec[booksbyauthor.BookLink]
	Changes es.Codec[booksbyauthor.Link]
	Views   es.Codec[booksbyauthor.View]
}

// BooksByAuthor is the books-by-author read model and its reaction.
type BooksByAuthor struct {
	links, view       *eskafka.Stage
	linkTable, viewTb *eskafka.Table
	topics            Topics
	authors, books    eskafka.Topics
	codecs            Codecs
}

// Topics are the read model's own topics.
type Topics struct {
	// LinksChangelog restores step one's book -> link state.
	LinksChangelog string
	// Repartition carries link changes keyed by author code.
	Repartition string
	// Changelog restores the views (author code -> view); public.
	Changelog string
	// DeadLetter receives the input records either stage gave up on.
	DeadLetter string
}

// Specs returns the settings of the read model's topics: the same an App
// plans for them from their roles (Register), for a caller that creates
// them itself.
func (t Topics) Specs() []eskafka.TopicSpec {
	compact := map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}
	return []eskafka.TopicSpec{
		{Name: t.LinksChangelog, Configs: compact},
		{Name: t.Changelog, Configs: compact},
		// Consumed at once; kept a week for inspection and replays.
		{Name: t.Repartition, Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": "604800000"}},
		// Kept a month: long enough for an operator to look.
		{Name: t.DeadLetter, Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": "2592000000"}},
	}
}

// BooksByAuthorTopics names the read model's topics in service.
func BooksByAuthorTopics(service string) Topics {
	p := service + ".booksbyauthor."
	return Topics{LinksChangelog: p + "links-changelog", Repartition: p + "repartition", Changelog: p + "changelog", DeadLetter: p + "deadletter"}
}

// Register adds the read model to app in one call: it opens the two
// stages' stores (booksbyauthor-links and booksbyauthor-view) and registers
// both stages, whose topics the App then plans by their roles, with the
// settings Topics.Specs lists (changelogs compacted, the dead-letter topic
// kept a month, the repartition topic a week). A failure is returned by
// the App's Start.
func Register(app *eskafka.App, codecs Codecs, opts ...Option) *BooksByAuthor {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	links, view := app.StageConfig("booksbyauthor-links"), app.StageConfig("booksbyauthor-view")
	if o.lingerSet {
		links.Linger, view.Linger = o.linger, o.linger
	}
	m := NewBooksByAuthor(links, view, codecs)
	app.AddStage(m.Stages()...)
	return m
}

// Option sets how Register runs the read model's stages.
type Option func(*options)

type options struct {
	linger    time.Duration
	lingerSet bool
}

// WithLinger has each of the read model's stages wait up to d after the
// first record of a batch for more, in place of the App's Config.Linger
// (whose default, 0, takes what has arrived). A read model need not follow each write at
// once: fewer, larger transactions cost the broker less per event (about
// a quarter less CPU per write at 64 writers with 25 ms,
// docs/performance.md), and the view lags its writes by up to d more.
func WithLinger(d time.Duration) Option {
	return func(o *options) { o.linger, o.lingerSet = d, true }
}

// NewBooksByAuthor returns the read model, for a caller that runs its
// stages itself (Register is the way for an App). linksCfg and viewCfg
// carry a store each (the stages must not share one).
func NewBooksByAuthor(linksCfg, viewCfg eskafka.Config, codecs Codecs) *BooksByAuthor {
	m := &BooksByAuthor{
		topics:  BooksByAuthorTopics(linksCfg.Service),
		authors: eskafka.AggregateTopics(linksCfg.Service, "authors"),
		books:   eskafka.AggregateTopics(linksCfg.Service, "books"),
		codecs:  codecs,
	}
	m.linkTable = &eskafka.Table{Prefix: "l/", Topic: m.topics.LinksChangelog, Hashed: true}
	m.viewTb = &eskafka.Table{Prefix: "v/", Topic: m.topics.Changelog, Hashed: true}
	m.links = eskafka.NewStage(eskafka.StageSpec{
		Name: "booksbyauthor.links", Inputs: []string{m.books.Events},
		Tables: []*eskafka.Table{m.linkTable}, Transform: linksTransform{m},
		DeadLetter: m.topics.DeadLetter, Outputs: []string{m.topics.Repartition},
	}, linksCfg)
	m.view = eskafka.NewStage(eskafka.StageSpec{
		Name: "booksbyauthor.view", Inputs: []string{m.authors.Events, m.topics.Repartition},
		Tables: []*eskafka.Table{m.viewTb}, Transform: viewTransform{m},
		DeadLetter: m.topics.DeadLetter, Outputs: []string{m.books.Commands},
	}, viewCfg)
	return m
}

// Topics returns the read model's own topics.
func (m *BooksByAuthor) Topics() Topics { return m.topics }

// Stages returns the two stages, to run and to watch.
func (m *BooksByAuthor) Stages() []*eskafka.Stage { return []*eskafka.Stage{m.links, m.view} }

// View returns the stage that keeps the views: the instance that owns an
// author code's partition of it is the one that serves the code's view
// (Get).
func (m *BooksByAuthor) View() *eskafka.Stage { return m.view }

// Get returns the view of an author code, if this instance serves it.
func (m *BooksByAuthor) Get(code string) (booksbyauthor.View, error) {
	var v booksbyauthor.View
	b, err := m.view.Lookup(m.viewTb, code)
	if err != nil {
		return v, err
	}
	if v, err = m.codecs.Views.Decode(b); err != nil {
		return v, fmt.Errorf("decode view of %q: %w", code, err)
	}
	return v, nil
}

type linksTransform struct{ m *BooksByAuthor }

func (t linksTransform) Handle(tx *eskafka.Tx, r *kgo.Record) error {
	m := t.m
	ev, err := m.codecs.BookEvents.Decode(r.Value)
	if err != nil && tx.Retryable(err) {
		return err
	}
	if err != nil {
		// An event the model cannot read is skipped, not retried
		// forever: the events topic is the source of truth and a newer
		// reader can rebuild the model from it.
		m.links.Logger().Warn("skipping undecodable book event", "partition", r.Partition, "offset", r.Offset, "err", err)
		return nil
	}
	bookID := string(r.Key)
	var prev booksbyauthor.BookLink
	b, ok, err := tx.Get(m.linkTable, bookID)
	if err != nil {
		return err
	}
	if ok {
		if prev, err = m.codecs.Links.Decode(b); err != nil && tx.Retryable(err) {
			return err
		}
		if err != nil {
			// Failing would stall the stage and then dead-letter
			// every later event of the book: follow it again from
			// here instead (a rebuild of the read model recovers
			// what the unreadable entry held).
			m.links.Logger().Error("stored link of a book cannot be decoded; following the book again from this event", "book", bookID, "err", err)
			prev = booksbyauthor.BookLink{}
		}
	}
	next, keep, out := booksbyauthor.FollowBook(prev, bookID, ev)
	switch {
	case !keep:
		if ok {
			tx.Put(m.linkTable, bookID, nil)
		}
	case next != prev || !ok:
		nb, _, err := m.codecs.Links.Encode(next)
		if err != nil {
			return err
		}
		tx.Put(m.linkTable, bookID, nb)
	}
	for _, rt := range out {
		lb, _, err := m.codecs.Changes.Encode(rt.Link)
		if err != nil {
			return err
		}
		tx.Emit(&kgo.Record{Topic: m.topics.Repartition, Partition: -1, Key: []byte(rt.AuthorCode), Value: lb})
	}
	return nil
}

// position returns the position of an author event in its author's
// history, from the header the processor writes; 0 (unknown: the view
// then treats the books as the pre-position code did) when it is missing
// or malformed.
func (m *BooksByAuthor) position(r *kgo.Record) int64 {
	for _, h := range r.Headers {
		if h.Key != eskafka.HeaderPosition {
			continue
		}
		p, err := strconv.ParseInt(string(h.Value), 10, 64)
		if err != nil || p < 1 {
			m.view.Logger().Warn("author event with a malformed position header; taking it as unknown", "partition", r.Partition, "offset", r.Offset, "header", fmt.Sprintf("%.32q", h.Value))
			return 0
		}
		return p
	}
	return 0
}

type viewTransform struct{ m *BooksByAuthor }

func (t viewTransform) Handle(tx *eskafka.Tx, r *kgo.Record) error {
	m := t.m
	code := string(r.Key)
	var v booksbyauthor.View
	b, ok, err := tx.Get(m.viewTb, code)
	if err != nil {
		return err
	}
	if ok {
		if v, err = m.codecs.Views.Decode(b); err != nil && tx.Retryable(err) {
			return err
		}
		if err != nil {
			// As for a link: the key starts again from this event
			// rather than eat every later one.
			m.view.Logger().Error("stored view of an author code cannot be decoded; starting it again from this event", "code", code, "err", err)
			v = booksbyauthor.View{}
		}
	}
	var unassign []booksbyauthor.Unassign
	before := v
	var linked *booksbyauthor.Link
	switch r.Topic {
	case m.authors.Events:
		ev, err := m.codecs.AuthorEvents.Decode(r.Value)
		if err != nil && tx.Retryable(err) {
			return err
		}
		if err != nil {
			m.view.Logger().Warn("skipping undecodable author event", "partition", r.Partition, "offset", r.Offset, "err", err)
			return nil
		}
		v, unassign = booksbyauthor.ApplyAuthor(v, code, ev, m.position(r))
	case m.topics.Repartition:
		l, err := m.codecs.Changes.Decode(r.Value)
		if err != nil && tx.Retryable(err) {
			return err
		}
		if err != nil {
			m.view.Logger().Warn("skipping undecodable link change", "partition", r.Partition, "offset", r.Offset, "err", err)
			return nil
		}
		v, unassign = booksbyauthor.ApplyLink(v, l)
		if l.Op == booksbyauthor.OpLink {
			linked = &l
		}
	}
	if v.Empty() {
		if ok {
			tx.Put(m.viewTb, code, nil)
		}
	} else {
		nb, _, err := m.codecs.Views.Encode(v)
		if err != nil {
			return err
		}
		if err := tx.Fits(&kgo.Record{Topic: m.topics.Changelog, Key: r.Key, Value: nb}); err != nil && linked != nil {
			// The view is one record: an author with more books than
			// its changelog's max.message.bytes holds would lose the
			// links past it, and with them the unassigning of those
			// books when it is deleted. The book linked past it is
			// unassigned instead, as one linked to a deleted author.
			m.view.Logger().Warn("an author's books no longer fit its view; unassigning the book linked last", "code", code, "book", linked.BookID, "err", err)
			v, unassign = booksbyauthor.ApplyLink(before, booksbyauthor.Link{Op: booksbyauthor.OpUnlink, BookID: linked.BookID})
			unassign = append(unassign, booksbyauthor.Unassign{BookID: linked.BookID, UpTo: linked.AuthorPosition})
			if nb, _, err = m.codecs.Views.Encode(v); err != nil {
				return err
			}
		}
		tx.Put(m.viewTb, code, nb)
	}
	// The reaction: unassign the books of a deleted author. The commands
	// are part of this transaction, so they are sent exactly once, also
	// across crashes; OnlyIfAuthor keeps a later re-assignment to another
	// author intact, OnlyIfAssignedBy one to the author's next life.
	for _, u := range unassign {
		bookID := u.BookID
		cmd := book.SetBookAuthor{ID: bookID, OnlyIfAuthor: code, OnlyIfAssignedBy: u.UpTo}
		cb, typ, err := m.codecs.BookCommands.Encode(cmd)
		if err != nil {
			return fmt.Errorf("encode reaction for book %s: %w", bookID, err)
		}
		msgID := ids.FromName("unassign-author", r.Topic, fmt.Sprint(r.Partition), fmt.Sprint(r.Offset), bookID)
		headers := []kgo.RecordHeader{
			{Key: eskafka.HeaderMsgID, Value: []byte(msgID)},
			{Key: eskafka.HeaderType, Value: []byte(typ)},
		}
		// Whoever deleted the author also unassigned the books: the
		// books' history says so.
		for _, h := range r.Headers {
			if h.Key == eskafka.HeaderSubject {
				headers = append(headers, h)
			}
		}
		tx.Emit(&kgo.Record{Topic: m.books.Commands, Partition: -1, Key: []byte(bookID), Value: cb, Headers: headers})
	}
	return nil
}
