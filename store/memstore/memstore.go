// Package memstore is an in-memory store.Store, for tests and examples: an
// eskafka.App given no OpenStore uses one per stage, so every stage
// restores its state from its changelogs at each start. Clone copies a
// store as it is, for tests that start again from an older copy.
package memstore

import (
	"sort"
	"strings"
	"sync"

	"github.com/bookscatalog/catalog/store"
)

// Store is a map-backed store.Store.
type Store struct {
	mu      sync.RWMutex
	data    map[string][]byte
	offsets map[store.TopicPartition]int64
}

// New returns an empty store.
func New() *Store {
	return &Store{data: map[string][]byte{}, offsets: map[store.TopicPartition]int64{}}
}

// Get implements store.Store.
func (s *Store) Get(key string) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.data[key]
	return v, ok, nil
}

// Scan implements store.Store.
func (s *Store) Scan(prefix, after string, fn func(string, []byte) bool) error {
	s.mu.RLock()
	keys := make([]string, 0, len(s.data))
	for k := range s.data {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	s.mu.RUnlock()
	sort.Strings(keys)
	for _, k := range keys {
		v, ok, _ := s.Get(k)
		if ok && !fn(k, v) {
			return nil
		}
	}
	return nil
}

// Offset implements store.Store.
func (s *Store) Offset(topic string, partition int32) (int64, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.offsets[store.TopicPartition{Topic: topic, Partition: partition}]
	return o, ok, nil
}

// Apply implements store.Store.
func (s *Store) Apply(b *store.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range b.Ops {
		if op.Delete {
			delete(s.data, op.Key)
		} else {
			s.data[op.Key] = append([]byte(nil), op.Value...)
		}
	}
	for tp, o := range b.Offsets {
		s.offsets[tp] = o
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error { return nil }

// Clone returns an independent copy of the store, as it is now: tests use
// it to start from an older copy of a store.
func (s *Store) Clone() *Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := New()
	for k, v := range s.data {
		c.data[k] = v
	}
	for tp, o := range s.offsets {
		c.offsets[tp] = o
	}
	return c
}
