package eskafka

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/store"
)

// Expiry sweeps delete, from the local store, the entries of tables whose
// changelog Kafka drops by retention (Table.Retention): without them the
// store would keep every entry it was ever given, while the topic keeps a
// week, and a disk fills at the rate of the writes however old they are.
//
// An entry's time is kept in the store beside it, under expiryPrefix and
// the entry's store key, not in its value: the changelog's records and the
// values a transform reads stay as they were, so that an instance of an
// older build reading either (a rollback, a rolling upgrade) is not misled,
// and ignores the times.
const (
	// expiryPrefix starts the store keys of entries' times; no table
	// prefix starts with a NUL.
	expiryPrefix = "\x00expiry/"
	// expireEvery is how long a finished pass waits before the next one.
	expireEvery = time.Hour
	// expireStep bounds the keys one step reads, so that a step between
	// two batches costs well under a millisecond however large the
	// table.
	expireStep = 1000
)

// stamp records in b when the entry at store key sk was written, or
// forgets its time when the entry is deleted (!put), if t expires entries.
// The time is the restored changelog record's (restoredAt), or now when r
// is nil (a commit): taken only for a table that expires entries, for
// stamp is on the path of every Put and every restored record.
func (t *Table) stamp(b *store.Batch, sk string, put bool, r *kgo.Record) {
	if t.Retention <= 0 {
		return
	}
	if !put {
		b.Delete(expiryPrefix + sk)
		return
	}
	at := time.Now()
	if r != nil {
		at = restoredAt(r, at)
	}
	b.Put(expiryPrefix+sk, binary.BigEndian.AppendUint64(nil, uint64(at.UnixMilli())))
}

// restoredAt is the time of a restored entry: its changelog record's, which
// the stage's producer set when it wrote it, but never later than now, so
// that a record stamped in the future is not kept for ever.
func restoredAt(r *kgo.Record, now time.Time) time.Time {
	if r.Timestamp.IsZero() || r.Timestamp.After(now) {
		return now
	}
	return r.Timestamp
}

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

// stepDue reports whether a step of a pass would run at now: a pass is under
// way, or the next one may start.
func (e *expiry) stepDue(now time.Time) bool { return e.busy() || !now.Before(e.due) }

// expires reports whether any of the stage's tables expires entries.
func (s *Stage) expires() bool {
	return slices.ContainsFunc(s.spec.Tables, func(t *Table) bool { return t.Retention > 0 })
}

// expireStep runs one step of the lane's sweep, if one is due: it reads up
// to expireStep entry times of a partition the lane holds and deletes the
// expired entries. It runs on the lane's goroutine between batches, once
// the lane's commits have reached the store (transactor.settle), so it
// never races the lane's own writes to those partitions; and it holds the
// stage's read lock from the check that the lane holds the partition to
// the deletes, so that no other lane gains the partition (and writes a
// key anew) in between.
func (l *lane) expireStep(now time.Time) error {
	s := l.s
	e := &l.expiry
	if len(e.todo) == 0 {
		if now.Before(e.due) {
			return nil
		}
		s.mu.RLock()
		parts := slices.Sorted(maps.Keys(l.parts))
		s.mu.RUnlock()
		for _, t := range s.spec.Tables {
			if t.Retention <= 0 {
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
	read, last := 0, ""
	s.mu.RLock()
	if _, held := l.parts[r.part]; held {
		var b store.Batch
		prefix := expiryPrefix + r.t.storeKey(r.part, "")
		err := s.cfg.Store.Scan(prefix, e.after, func(k string, v []byte) bool {
			read++
			last = k
			if len(v) != 8 || now.Sub(time.UnixMilli(int64(binary.BigEndian.Uint64(v)))) >= r.t.Retention {
				b.Delete(k)
				b.Delete(strings.TrimPrefix(k, expiryPrefix))
			}
			return read < expireStep
		})
		if err == nil && len(b.Ops) > 0 {
			err = s.cfg.Store.Apply(&b)
			e.removed += len(b.Ops) / 2
		}
		if err != nil {
			s.mu.RUnlock()
			return fmt.Errorf("expire %s partition %d: %w", r.t.Topic, r.part, err)
		}
	}
	s.mu.RUnlock()
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
