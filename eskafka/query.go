package eskafka

import (
	"fmt"
)

// Get returns the state of the aggregate with key, from the store, if this
// instance serves the key's partition.
func (p *Processor[S, C, E]) Get(key string) (S, error) {
	var zero S
	b, err := p.Lookup(p.states, key)
	if err != nil {
		return zero, err
	}
	s, err := p.codecs.State.Decode(b)
	if err != nil {
		return zero, fmt.Errorf("decode %s %q: %w", p.agg.Name, key, err)
	}
	return s, nil
}

// List returns up to limit states with keys after after, in key order, from
// the partitions this instance serves. partial reports that some owned
// partitions are still restoring, so the answer may miss keys. A state that
// cannot be decoded is left out (and logged): one corrupt key must not
// hide all the others.
func (p *Processor[S, C, E]) List(after string, limit int) (items []S, keys []string, partial bool, err error) {
	partial, err = p.Scan(p.states, after, func(key string, v []byte) bool {
		s, err := p.codecs.State.Decode(v)
		if err != nil {
			p.log.Error("stored state cannot be decoded; leaving it out of the list", "key", key, "err", err)
			return true
		}
		items = append(items, s)
		keys = append(keys, key)
		return len(items) < limit
	})
	return items, keys, partial, err
}

// DecodeEvent decodes an event as the events topic holds it (the Data of a
// Recorded).
func (p *Processor[S, C, E]) DecodeEvent(data []byte) (E, error) { return p.codecs.Event.Decode(data) }
