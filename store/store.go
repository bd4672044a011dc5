// Package store defines the local state store of a stage (an aggregate's
// processor, a projection): a key-value cache of changelog topics that
// records, atomically with its data, the offsets of the changelog it
// reflects, so that a restarted instance reads each changelog only from
// where its store stops. Implementations live in subpackages: on disk with
// Pebble (pebblestore), and in memory for tests and examples (memstore);
// storetest is the conformance suite every implementation runs.
package store

// Store is a local key-value store. Keys are ordered bytewise. It is safe for
// concurrent use: one writer (the processor) and many readers (queries).
type Store interface {
	// Get returns the value of key; ok is false when there is none.
	Get(key string) (value []byte, ok bool, err error)
	// Scan calls fn, in key order, for each key that starts with prefix
	// and sorts after after (all of them when after is ""), until fn
	// returns false. value is only valid during the call.
	Scan(prefix, after string, fn func(key string, value []byte) bool) error
	// Offset returns the next offset to read of a changelog partition;
	// ok is false when the store has none recorded.
	Offset(topic string, partition int32) (next int64, ok bool, err error)
	// Apply writes a batch atomically: all of its changes and offsets, or
	// none of them.
	Apply(b *Batch) error
	// Close releases the store.
	Close() error
}

// Op is one change of a Batch: a put, or a delete when Delete is set.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

// TopicPartition names a changelog partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Batch is a set of changes applied atomically by Store.Apply. Later changes
// to a key win over earlier ones.
type Batch struct {
	Ops     []Op
	Offsets map[TopicPartition]int64
}

// Put sets key to value.
func (b *Batch) Put(key string, value []byte) { b.Ops = append(b.Ops, Op{Key: key, Value: value}) }

// Delete removes key.
func (b *Batch) Delete(key string) { b.Ops = append(b.Ops, Op{Key: key, Delete: true}) }

// SetOffset records next as the next offset to read of a changelog partition.
func (b *Batch) SetOffset(topic string, partition int32, next int64) {
	if b.Offsets == nil {
		b.Offsets = map[TopicPartition]int64{}
	}
	tp := TopicPartition{topic, partition}
	if cur, ok := b.Offsets[tp]; !ok || next > cur {
		b.Offsets[tp] = next
	}
}

// Empty reports whether the batch changes nothing.
func (b *Batch) Empty() bool { return len(b.Ops) == 0 && len(b.Offsets) == 0 }
