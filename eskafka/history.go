package eskafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Recorded is one event of an aggregate's history, as the processor's
// history index keeps it.
type Recorded struct {
	// Position is the event's place in the aggregate's whole stream: 1,
	// 2, 3…, never reset (Version restarts when a deleted aggregate is
	// created again).
	Position int64 `json:"position"`
	// Version is the aggregate's version after the event.
	Version int64 `json:"version"`
	// Type is the event's type name.
	Type string `json:"type"`
	// TimeMillis is the event record's timestamp (its commit), in Unix
	// milliseconds as Kafka keeps it.
	TimeMillis int64 `json:"time"`
	// MsgID is the command that caused the event.
	MsgID string `json:"msgId"`
	// Subject is who sent that command, when known.
	Subject string `json:"subject,omitempty"`
	// Data is the encoded event (the events topic's record value).
	Data []byte `json:"data"`
}

// Time returns the event's timestamp.
func (r *Recorded) Time() time.Time { return time.UnixMilli(r.TimeMillis).UTC() }

// The history index lives in the processor's store under the table's
// partitioned layout: "h/PPPP/<key>" holds the key's last position, and
// "h/PPPP/<key>\x00<position, 20 digits>" each event. A key containing a
// NUL byte cannot be told apart, so it is not indexed.
func historyEntryKey(key string, position int64) string {
	return fmt.Sprintf("%s\x00%020d", key, position)
}

// recordedOf reads the history entry of an events record.
func recordedOf(r *kgo.Record, position int64) (*Recorded, error) {
	v, err := strconv.ParseInt(header(r, HeaderVersion), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("event %s/%d@%d: header %s: %w", r.Topic, r.Partition, r.Offset, HeaderVersion, err)
	}
	return &Recorded{
		Position: position, Version: v, Type: header(r, HeaderType), TimeMillis: r.Timestamp.UnixMilli(),
		MsgID: header(r, HeaderMsgID), Subject: header(r, HeaderSubject), Data: r.Value,
	}, nil
}

// restoreHistory rebuilds the history index from the events topic (the
// history table's Restore): the position is the event's header, or, for
// events written before positions were, one more than the last.
func restoreHistory(put func(string, []byte), get func(string) ([]byte, bool, error), r *kgo.Record) error {
	key := string(r.Key)
	if containsNUL(key) {
		return nil
	}
	last, err := lastPosition(get, key)
	if err != nil {
		return err
	}
	pos := last + 1
	if h := header(r, HeaderPosition); h != "" {
		p, err := strconv.ParseInt(h, 10, 64)
		if err != nil || p < 1 {
			return fmt.Errorf("header %s: %q is not a position", HeaderPosition, truncate(h, 32))
		}
		// The processor numbers a key's events 1, 2, 3… in one
		// partition; any other number is not its record, and taking
		// it would rewind the index or make it claim events that do
		// not exist.
		if p != pos {
			return fmt.Errorf("header %s: %d does not follow the key's last indexed position %d", HeaderPosition, p, last)
		}
	}
	rec, err := recordedOf(r, pos)
	if err != nil {
		return err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	put(historyEntryKey(key, pos), b)
	put(key, formatInt(pos))
	return nil
}

// lastPosition returns the last position recorded for key (0: none).
func lastPosition(get func(string) ([]byte, bool, error), key string) (int64, error) {
	b, ok, err := get(key)
	if err != nil || !ok {
		return 0, err
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("history of %q: last position %q: %w", key, truncate(string(b), 32), err)
	}
	return n, nil
}

func containsNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

// HistoryPage is a page of an aggregate's history.
type HistoryPage struct {
	// Events are in the order asked for.
	Events []Recorded
	// Total is the number of events the aggregate has ever had.
	Total int64
	// Next is the position to pass as after for the next page; 0 when
	// this page is the last.
	Next int64
}

// History returns up to limit events of key's history after position after
// (before it when desc), oldest first (newest first when desc), if this
// instance serves the key's partition. ErrNotFound: the key has no events.
func (p *Processor[S, C, E]) History(key string, after int64, limit int, desc bool) (*HistoryPage, error) {
	total, err := p.historyTotal(key)
	if err != nil {
		return nil, err
	}
	from, to := after+1, min(total, after+int64(limit)) // positions, inclusive
	if desc {
		if after <= 0 || after > total+1 {
			after = total + 1
		}
		from, to = max(1, after-int64(limit)), after-1
	}
	page := &HistoryPage{Total: total, Events: []Recorded{}}
	if from <= to {
		if page.Events, err = p.historyRange(key, from, to); err != nil {
			return nil, err
		}
	}
	if desc {
		for i, j := 0, len(page.Events)-1; i < j; i, j = i+1, j-1 {
			page.Events[i], page.Events[j] = page.Events[j], page.Events[i]
		}
		if from > 1 {
			page.Next = from
		}
	} else if to < total {
		page.Next = to
	}
	return page, nil
}

// historyTotal returns how many events key has ever had, or ErrNotFound.
func (p *Processor[S, C, E]) historyTotal(key string) (int64, error) {
	if containsNUL(key) {
		return 0, ErrNotFound
	}
	b, err := p.Lookup(p.history, key)
	if err != nil {
		return 0, err
	}
	total, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("history of %q: last position: %w", key, err)
	}
	return total, nil
}

// historyRange returns the events of key at positions from..to, in order.
func (p *Processor[S, C, E]) historyRange(key string, from, to int64) ([]Recorded, error) {
	// The index's total is only a claim: do not allocate by it.
	out := make([]Recorded, 0, min(to-from+1, 1024))
	err := p.eachEvent(key, from, to, func(rec *Recorded) bool {
		out = append(out, *rec)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachEvent calls f with the events of key at positions from..to, in
// order, one at a time, until f returns false.
func (p *Processor[S, C, E]) eachEvent(key string, from, to int64, f func(*Recorded) bool) error {
	part := PartitionFor(key, p.cfg.Partitions)
	prefix := p.history.storeKey(part, key+"\x00")
	start := p.history.storeKey(part, historyEntryKey(key, from))
	var derr error
	// Scan's after is exclusive: start just before the first wanted key.
	err := p.cfg.Store.Scan(prefix, start[:len(start)-1], func(_ string, v []byte) bool {
		var rec Recorded
		if derr = json.Unmarshal(v, &rec); derr != nil {
			return false
		}
		if rec.Position < from {
			return true
		}
		if rec.Position > to {
			return false
		}
		return f(&rec) && rec.Position < to
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("read the history of %s %q: %w", p.agg.Name, key, err)
	}
	return nil
}

// ErrNotYet is returned by StateAt for a point before the aggregate existed
// or while it was deleted.
var ErrNotYet = errors.New("the aggregate did not exist at that point")

// StateAt returns key's state as of its event at position (when position >
// 0) or as of time at (the last event committed at or before it), by
// folding its history; ErrNotFound when the key has no events, ErrNotYet
// when it did not exist at that point.
func (p *Processor[S, C, E]) StateAt(key string, position int64, at time.Time) (S, *Recorded, error) {
	var state S
	total, err := p.historyTotal(key)
	if err != nil {
		return state, nil, err
	}
	to := total
	if position > 0 {
		to = min(position, total)
	}
	// Folded while read: a long history is never all in memory at once.
	var last *Recorded
	var derr error
	err = p.eachEvent(key, 1, to, func(rec *Recorded) bool {
		if position <= 0 && rec.TimeMillis > at.UnixMilli() {
			return false
		}
		ev, err := p.codecs.Event.Decode(rec.Data)
		if err != nil {
			derr = fmt.Errorf("decode event %d of %s %q: %w", rec.Position, p.agg.Name, key, err)
			return false
		}
		state, last = p.agg.Evolve(state, ev), rec
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return state, nil, err
	}
	if last == nil || !p.agg.Exists(state) {
		return state, last, ErrNotYet
	}
	return state, last, nil
}
