package avro

// DecodeNoRecover decodes like Decode but lets a panic of the decoder
// through, so that fuzzing finds it.
func DecodeNoRecover[T any](v *Value[T], b []byte) (T, error) { return v.decode(b, false) }

// DecodeUnionNoRecover is DecodeNoRecover for a Union.
func DecodeUnionNoRecover[I any](u *Union[I], b []byte) (I, error) { return u.decode(b, false) }

// CachedWriters returns how many writer schemas other than its own the
// codec c (a Value or a Union) holds resolved, or refused, for later
// frames.
func CachedWriters(c interface{ coreOf() *core }) int {
	co := c.coreOf()
	co.mu.RLock()
	defer co.mu.RUnlock()
	return len(co.writers)
}

func (c *core) coreOf() *core { return c }

// MaxCachedWriters is maxCachedWriters, for tests.
const MaxCachedWriters = maxCachedWriters

// CachedWriterBytes returns the size of the writer schemas (their JSON)
// that CachedWriters counts.
func CachedWriterBytes(c interface{ coreOf() *core }) int {
	co := c.coreOf()
	co.mu.RLock()
	defer co.mu.RUnlock()
	n := 0
	for _, r := range co.writers {
		n += r.size
	}
	return n
}

// MaxCachedWriterBytes is maxCachedWriterBytes, for tests.
const MaxCachedWriterBytes = maxCachedWriterBytes
