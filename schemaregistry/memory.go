package schemaregistry

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/bookscatalog/catalog/avro"
)

// Memory is a registry held in memory, with the rules of the Kafka one, for
// tests and examples. It is safe for concurrent use.
type Memory struct {
	mu      sync.Mutex
	schemas map[uint64]string
	lookups int
}

// NewMemory returns an empty registry.
func NewMemory() *Memory { return &Memory{schemas: map[uint64]string{}} }

// Register implements avro.Registry.
func (m *Memory) Register(ctx context.Context, schemaJSON string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fp, err := parse(schemaJSON)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if have, ok := m.schemas[fp]; ok {
		if !sameJSON(have, schemaJSON) {
			return 0, conflict(fp, have)
		}
		return fp, nil
	}
	m.schemas[fp] = schemaJSON
	return fp, nil
}

// Lookup implements avro.Registry.
func (m *Memory) Lookup(ctx context.Context, fp uint64) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	js, ok := m.schemas[fp]
	if !ok {
		return "", fmt.Errorf("%w: %s is not in the registry", avro.ErrUnknownSchema, avro.FormatFingerprint(fp))
	}
	return js, nil
}

// All implements avro.Registry.
func (m *Memory) All(ctx context.Context) (map[uint64]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.schemas), nil
}

// Lookups returns how many times Lookup was called, for tests of caching.
func (m *Memory) Lookups() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookups
}
