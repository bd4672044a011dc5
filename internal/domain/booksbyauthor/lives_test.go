package booksbyauthor_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	bba "github.com/bookscatalog/catalog/internal/domain/booksbyauthor"
)

// A timeline is one history of an author code and some books, as the
// service would make it: a book is given the code only while the author
// exists (the precheck), with the position of the author's last event
// then; author events carry their positions.
type timeline struct {
	authorEvents []input // with pos
	bookEvents   map[string][]book.Event
	bookIDs      []string
	// deletions are the positions of the author's deletions.
	deletions []int64
}

func randomTimeline(r *rand.Rand, code string) timeline {
	tl := timeline{bookEvents: map[string][]book.Event{}}
	var as author.State
	var pos int64
	books := map[string]book.State{}
	nb := 1 + r.IntN(4)
	for i := range nb {
		tl.bookIDs = append(tl.bookIDs, fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
	}
	for range 6 + r.IntN(20) {
		if r.IntN(2) == 0 {
			var cmd author.Command
			switch k := r.IntN(4); {
			case !as.Exists():
				cmd = author.CreateAuthor{Code: code, FirstName: "Jane", LastName: "Austen"}
			case k == 0:
				cmd = author.UpdateAuthor{Code: code, FirstName: "J.", LastName: "Austen"}
			default:
				cmd = author.DeleteAuthor{Code: code}
			}
			evs, err := author.Decide(as, cmd)
			if err != nil {
				continue
			}
			for _, e := range evs {
				pos++
				as = author.Evolve(as, e)
				tl.authorEvents = append(tl.authorEvents, input{aev: e, pos: pos})
				if _, ok := e.(author.AuthorDeleted); ok {
					tl.deletions = append(tl.deletions, pos)
				}
			}
			continue
		}
		id := tl.bookIDs[r.IntN(nb)]
		s := books[id]
		// The precheck: the author exists, and its last position is pos.
		code, at := "", int64(0)
		if as.Exists() && r.IntN(5) != 0 {
			code, at = "austen", pos
		}
		var cmd book.Command
		switch k := r.IntN(8); {
		case !s.Exists() || k == 0:
			cmd = book.CreateBook{ID: id, Title: titles[r.IntN(len(titles))], AuthorCode: code, AuthorPosition: at}
		case k <= 4:
			cmd = book.SetBookAuthor{ID: id, AuthorCode: code, AuthorPosition: at}
		case k <= 6:
			cmd = book.UpdateBook{ID: id, Title: titles[r.IntN(len(titles))]}
		default:
			cmd = book.RemoveBook{ID: id}
		}
		evs, err := book.Decide(s, cmd)
		if err != nil {
			continue
		}
		for _, e := range evs {
			s = book.Evolve(s, e)
			tl.bookEvents[id] = append(tl.bookEvents[id], e)
		}
		books[id] = s
	}
	return tl
}

// streams returns the author stream and each book's link stream for code.
func (tl timeline) streams(t *testing.T, code string) [][]input {
	ss := [][]input{tl.authorEvents}
	for _, id := range tl.bookIDs {
		ss = append(ss, linkStream(t, code, id, tl.bookEvents[id]))
	}
	return ss
}

// finalBooks folds each book's events.
func (tl timeline) finalBooks() map[string]book.State {
	out := map[string]book.State{}
	for _, id := range tl.bookIDs {
		var s book.State
		for _, e := range tl.bookEvents[id] {
			s = book.Evolve(s, e)
		}
		out[id] = s
	}
	return out
}

// TestPropertyLives checks the reaction when the author code is deleted and
// created again, whatever order the author events and the link changes
// arrive in: every book left with a life of the author that ended is
// unassigned by some reaction, and no reaction unassigns a book given to
// the author's current life. Before positions, the deletion of one life
// unassigned the books already given to the next, and a book given to a
// life that ended stayed with the next one when its link arrived late.
func TestPropertyLives(t *testing.T) {
	const (
		code          = "austen"
		scenarios     = 500
		interleavings = 40
	)
	var recreatedWithBooks, deadBooks, liveBooks int
	for seed := range uint64(scenarios) {
		r := rand.New(rand.NewPCG(seed, 0x11fe))
		tl := randomTimeline(r, code)
		final := tl.finalBooks()
		lastDeletion := int64(0)
		if n := len(tl.deletions); n > 0 {
			lastDeletion = tl.deletions[n-1]
		}
		alive := len(tl.authorEvents) > 0
		if alive {
			_, deleted := tl.authorEvents[len(tl.authorEvents)-1].aev.(author.AuthorDeleted)
			alive = !deleted
		}
		wantDead, wantLive := map[string]bool{}, map[string]bool{}
		for id, s := range final {
			if !s.Exists() || s.AuthorCode != code {
				continue
			}
			if s.AuthorPosition <= lastDeletion {
				wantDead[id] = true
			} else {
				wantLive[id] = true
			}
		}
		if len(tl.deletions) > 0 && alive && len(wantLive)+len(wantDead) > 0 {
			recreatedWithBooks++
		}
		deadBooks += len(wantDead)
		liveBooks += len(wantLive)
		ss := tl.streams(t, code)
		for k := range interleavings {
			order := interleave(r, ss)
			if k == 0 {
				order = slices.Concat(ss...)
			} else if k == 1 {
				order = slices.Concat(append(slices.Clone(ss[1:]), ss[0])...)
			}
			v, reactions := applyAll(code, order)
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("seed %d interleaving %d: %s\nauthor: %v\nbooks: %v\nfinal: %+v\nreactions: %+v\norder: %s",
					seed, k, fmt.Sprintf(format, args...), tl.authorEvents, tl.bookEvents, final, reactions, fmtOrder(order))
			}
			// A reaction's command, applied to the book as it ends up.
			unassigns := func(id string) bool {
				for _, x := range reactions {
					if x.BookID != id {
						continue
					}
					if x.UpTo <= 0 {
						fail("reaction %+v without a position, although every event had one", x)
					}
					evs, err := book.Decide(final[id], book.SetBookAuthor{ID: id, OnlyIfAuthor: code, OnlyIfAssignedBy: x.UpTo})
					if err != nil {
						fail("reaction %+v rejected: %v", x, err)
					}
					if len(evs) > 0 {
						return true
					}
				}
				return false
			}
			for id := range wantDead {
				if !unassigns(id) {
					fail("book %s, given to a life of the author that ended, is never unassigned", id)
				}
			}
			for id := range wantLive {
				if unassigns(id) {
					fail("book %s, given to the author's current life, is unassigned", id)
				}
			}
			// The view holds the books whose author is the code, and
			// lists those of its current life.
			wantBooks := map[string]string{}
			var wantList []string
			for id, s := range final {
				if s.Exists() && s.AuthorCode == code {
					wantBooks[id] = s.Title
					if alive && wantLive[id] {
						wantList = append(wantList, id)
					}
				}
			}
			if !maps.Equal(v.Books, wantBooks) {
				fail("Books = %v, want %v", v.Books, wantBooks)
			}
			if v.Author != nil {
				var got []string
				for _, b := range v.List() {
					got = append(got, b.ID)
				}
				slices.Sort(got)
				slices.Sort(wantList)
				if !slices.Equal(got, wantList) {
					fail("List = %v, want %v", got, wantList)
				}
			}
			if (v.Author != nil) != alive || v.Deleted != (len(tl.deletions) > 0 && !alive) || v.DeletedAt != lastDeletion {
				fail("view %+v, want alive %v, deleted at %d", v, alive, lastDeletion)
			}
		}
	}
	t.Logf("recreated codes with books %d, dead books %d, live books %d", recreatedWithBooks, deadBooks, liveBooks)
	if recreatedWithBooks < 50 || deadBooks < 100 || liveBooks < 100 {
		t.Fatalf("generator too weak: recreated codes with books %d, dead books %d, live books %d", recreatedWithBooks, deadBooks, liveBooks)
	}
}

// TestReactionAcrossLives is the two cases the positions are for, each in
// the order that used to go wrong.
func TestReactionAcrossLives(t *testing.T) {
	const code = "austen"
	created := func(pos int64) input {
		return input{aev: author.AuthorCreated{Code: code, FirstName: "Jane", LastName: "Austen"}, pos: pos}
	}
	deleted := func(pos int64) input { return input{aev: author.AuthorDeleted{Code: code}, pos: pos} }
	linkAt := func(pos int64) input {
		return input{link: &bba.Link{Op: bba.OpLink, BookID: b1, Title: "Emma", AuthorPosition: pos}}
	}
	t.Run("a book given to the next life arrives before the deletion", func(t *testing.T) {
		// Created at 1, deleted at 2, created again at 3; the book was
		// given at 3 and its link overtook the deletion.
		v, all := applyAll(code, []input{created(1), linkAt(3), deleted(2), created(3)})
		if len(all) != 0 {
			t.Fatalf("reactions %+v, want none: the book belongs to the author's current life", all)
		}
		if got := v.List(); len(got) != 1 || got[0].ID != b1 {
			t.Fatalf("List = %v, want the book", got)
		}
	})
	t.Run("a book given to the life that ended arrives after the next one began", func(t *testing.T) {
		v, all := applyAll(code, []input{created(1), deleted(2), created(3), linkAt(1)})
		if !slices.Equal(all, []bba.Unassign{{BookID: b1, UpTo: 2}}) {
			t.Fatalf("reactions %+v, want the book unassigned up to position 2", all)
		}
		if got := v.List(); len(got) != 0 {
			t.Fatalf("List = %v, want none: the book was given to the life that ended", got)
		}
	})
}

// TestReactionToAnUnknownPositionSparesTheNextLife: a book linked with
// position 0 (given before positions, or by a command sent to Kafka
// directly) is unassigned when the life ends, but the reaction must still
// leave alone the book once it has been given to the author's next life
// (position above the deletion) before the reaction reaches it.
func TestReactionToAnUnknownPositionSparesTheNextLife(t *testing.T) {
	const code = "austen"
	created := func(pos int64) input {
		return input{aev: author.AuthorCreated{Code: code, FirstName: "Jane", LastName: "Austen"}, pos: pos}
	}
	deleted := func(pos int64) input { return input{aev: author.AuthorDeleted{Code: code}, pos: pos} }
	linkAt := func(pos int64) input {
		return input{link: &bba.Link{Op: bba.OpLink, BookID: b1, Title: "Emma", AuthorPosition: pos}}
	}
	// The book, given to the life created at 3 (position 3), by the
	// time the reaction reaches it.
	final := book.State{ID: b1, Title: "Emma", AuthorCode: code, AuthorPosition: 3, Version: 3}
	for name, order := range map[string][]input{
		"linked at 0 before the deletion":                     {created(1), linkAt(0), deleted(2), created(3), linkAt(3)},
		"linked at 0 after the deletion, before the creation": {created(1), deleted(2), linkAt(0), created(3), linkAt(3)},
	} {
		t.Run(name, func(t *testing.T) {
			v, all := applyAll(code, order)
			if len(all) == 0 {
				t.Fatalf("no reaction: the book linked at 0 to the life that ended must be unassigned")
			}
			for _, x := range all {
				evs, err := book.Decide(final, book.SetBookAuthor{ID: b1, OnlyIfAuthor: code, OnlyIfAssignedBy: x.UpTo})
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) > 0 {
					t.Fatalf("reaction %+v unassigns the book given to the author's current life (position 3, after the deletion at 2): %+v", x, evs)
				}
			}
			if got := v.List(); len(got) != 1 || got[0].ID != b1 {
				t.Fatalf("List = %v, want the book", got)
			}
		})
	}
}

// applyAll applies the inputs in order to an empty view and returns the
// view and every reaction on the way.
func applyAll(code string, order []input) (bba.View, []bba.Unassign) {
	var v bba.View
	var all []bba.Unassign
	for _, in := range order {
		var u []bba.Unassign
		v, u = applyU(v, code, in)
		all = append(all, u...)
	}
	return v, all
}
