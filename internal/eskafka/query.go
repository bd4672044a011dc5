package eskafka

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Get returns the state of the aggregate with key, from the store, if this
// instance owns and has restored the key's partition.
func (p *Processor[S, C, E]) Get(key string) (S, error) {
	var zero S
	if err := p.servable(PartitionFor(key, p.cfg.Partitions)); err != nil {
		return zero, err
	}
	b, ok, err := p.cfg.Store.Get(statePrefix + key)
	if err != nil {
		return zero, fmt.Errorf("load %s %q: %w", p.agg.Name, key, err)
	}
	if !ok {
		return zero, ErrNotFound
	}
	s, err := p.codecs.State.Decode(b)
	if err != nil {
		return zero, fmt.Errorf("decode %s %q: %w", p.agg.Name, key, err)
	}
	return s, nil
}

func (p *Processor[S, C, E]) servable(part int32) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	switch p.parts[part] {
	case Ready:
		return nil
	case Restoring:
		return ErrRestoring
	}
	if !p.joined {
		return ErrRestoring
	}
	return ErrNotOwner
}

// List returns up to limit states with keys after after, in key order, from
// the partitions this instance serves. partial reports that some owned
// partitions are still restoring, so the answer may miss keys.
func (p *Processor[S, C, E]) List(after string, limit int) (items []S, keys []string, partial bool, err error) {
	p.mu.RLock()
	ready := map[int32]bool{}
	for part, st := range p.parts {
		ready[part] = st == Ready
		partial = partial || st == Restoring
	}
	partial = partial || !p.joined
	p.mu.RUnlock()
	var derr error
	err = p.cfg.Store.Scan(statePrefix, statePrefix+after, func(k string, v []byte) bool {
		key := strings.TrimPrefix(k, statePrefix)
		if !ready[PartitionFor(key, p.cfg.Partitions)] {
			return true
		}
		s, err := p.codecs.State.Decode(v)
		if err != nil {
			derr = fmt.Errorf("decode %s %q: %w", p.agg.Name, key, err)
			return false
		}
		items = append(items, s)
		keys = append(keys, key)
		return len(items) < limit
	})
	if err == nil {
		err = derr
	}
	return items, keys, partial, err
}

// Partitions returns the state of each partition this instance owns.
func (p *Processor[S, C, E]) Partitions() map[int32]PartitionState {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return maps.Clone(p.parts)
}

// Ready reports whether the processor has joined its group and restored
// every partition it owns.
func (p *Processor[S, C, E]) Ready() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.joined {
		return false
	}
	return !slices.Contains(slices.Collect(maps.Values(p.parts)), Restoring)
}

// Restored returns the number of changelog records restored so far.
func (p *Processor[S, C, E]) Restored() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.restored
}
