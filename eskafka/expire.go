package eskafka

import (
	"fmt"
	"slices"
	"time"

	"github.com/bookscatalog/catalog/store"
)

// Expiry sweeps delete, from the local store, the entries of tables whose
// changelog Kafka drops by retention (Table.Expire): without them the
// store would keep every entry it was ever given, while the topic keeps a
// week, and a disk fills at the rate of the writes however old they are.
const (
	// expireEvery is how long a finished pass waits before the next one.
	expireEvery = time.Hour
	// expireStep bounds the keys one step reads, so that a step between
	// two batches costs well under a millisecond however large the
	// table.
	expireStep = 1000
)

// expiry is a lane's progress through one pass over its expiring tables.
type expiry struct {
	// due is when the next pass may start.
	due time.Time
	// todo holds the (table, partition) keyspaces left in this pass; the
	// first is being read from after.
	todo  []expiryRange
	after string
	// removed counts the entries this pass deleted.
	removed int
}

type expiryRange struct {
	t    *Table
	part int32
}

// busy reports whether a pass is under way.
func (e *expiry) busy() bool { return len(e.todo) > 0 }

// expires reports whether any of the stage's tables expires entries.
func (s *Stage) expires() bool {
	return slices.ContainsFunc(s.spec.Tables, func(t *Table) bool { return t.Expire != nil })
}

// expireStep runs one step of the lane's sweep, if one is due: it reads up
// to expireStep keys of the partitions the lane holds and deletes the
// expired ones. It runs on the lane's goroutine between batches, so it
// never races the lane's own writes to those partitions.
func (l *lane) expireStep(now time.Time) error {
	s := l.s
	e := &l.expiry
	if len(e.todo) == 0 {
		if now.Before(e.due) {
			return nil
		}
		s.mu.RLock()
		parts := make([]int32, 0, len(l.parts))
		for p := range l.parts {
			parts = append(parts, p)
		}
		s.mu.RUnlock()
		slices.Sort(parts)
		for _, t := range s.spec.Tables {
			if t.Expire == nil {
				continue
			}
			for _, p := range parts {
				e.todo = append(e.todo, expiryRange{t, p})
			}
		}
		e.after, e.removed = "", 0
		if len(e.todo) == 0 {
			e.due = now.Add(s.cfg.expireEvery)
			return nil
		}
	}
	r := e.todo[0]
	s.mu.RLock()
	_, held := l.parts[r.part]
	s.mu.RUnlock()
	var b store.Batch
	read, last := 0, ""
	if held {
		prefix := r.t.storeKey(r.part, "")
		err := s.cfg.Store.Scan(prefix, e.after, func(k string, v []byte) bool {
			read++
			last = k
			if r.t.Expire(v, now) {
				b.Delete(k)
			}
			return read < expireStep
		})
		if err != nil {
			return fmt.Errorf("expire %s partition %d: %w", r.t.Topic, r.part, err)
		}
		if len(b.Ops) > 0 {
			if err := s.cfg.Store.Apply(&b); err != nil {
				return fmt.Errorf("expire %s partition %d: %w", r.t.Topic, r.part, err)
			}
			e.removed += len(b.Ops)
		}
	}
	if read == expireStep {
		e.after = last
		return nil
	}
	e.todo, e.after = e.todo[1:], ""
	if len(e.todo) == 0 {
		e.due = now.Add(s.cfg.expireEvery)
		if e.removed > 0 {
			l.log.Info("expired entries deleted from the local store", "entries", e.removed)
		}
	}
	return nil
}
