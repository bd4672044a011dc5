package schemaregistry

// Explained returns how many fingerprints without a schema the registry
// remembers why (an invalid record, a tombstone).
func Explained(r *Registry) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.invalid) + len(r.deleted)
}

// MaxExplained is maxExplained, for tests.
const MaxExplained = maxExplained
