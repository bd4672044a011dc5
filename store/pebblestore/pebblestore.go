// Package pebblestore is a store.Store on disk, with Pebble, for the
// stages of a service's instances: a restarted instance keeps its state
// and reads its changelogs only from where it stopped. Data and changelog
// offsets are written in one Pebble batch, so the store never claims an
// offset it does not hold the data of.
//
// A store whose files are damaged is refused at open, or, for damage only a
// read of it meets, answers that read with an error: the process is not
// stopped, and the errors name the directory and what to do (it is a cache
// of the changelogs: deleted, it is rebuilt from them).
package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/bookscatalog/catalog/store"
)

// Key prefixes separate user data from offsets.
const (
	dataPrefix   = 'd'
	offsetPrefix = 'o'
)

// Store is a Pebble-backed store.Store.
type Store struct {
	db *pebble.DB
}

// cacheBytes is the block cache of each store.
const cacheBytes = 32 << 20

// Open opens (creating if needed) the store in dir. A store another process
// holds, or whose files are damaged, is refused with an error naming dir.
func Open(dir string) (*Store, error) {
	cache := pebble.NewCache(cacheBytes)
	defer cache.Unref() // the DB holds its own reference
	opts := &pebble.Options{Logger: quietLogger{}, Cache: cache}
	opts.Experimental.CompactionScheduler = newScheduler()
	// Most lookups of a command processor are for keys that are not
	// there (a new aggregate, an idempotency key not seen yet); without
	// Bloom filters each one reads index and data blocks of every table.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	opts.EventListener = &pebble.EventListener{
		// Pebble's default stops the process (Logger.Fatalf) in
		// whichever goroutine meets the damage: a background one at
		// open, and at every restart again, or a command handler's,
		// which would take the panic for the command's fault. The read
		// returns the error instead.
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			slog.Error("pebble store damaged: it is a cache of its changelogs; stop the instance and delete the directory to have it rebuilt",
				"dir", dir, "file", info.Path, "err", info.Details)
		},
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "lock held by current process") {
			return nil, fmt.Errorf("open pebble store %s: %w (another process uses it: is another instance running with the same DATA_DIR?)", dir, err)
		}
		return nil, damaged(dir, err)
	}
	// Opening reads no table: one damaged would be met by the first read
	// of it, or by Pebble's background work. Every table's footer and
	// properties are read now, so that a table truncated or overwritten is
	// refused here.
	if _, err := db.SSTables(pebble.WithProperties()); err != nil {
		db.Close()
		return nil, damaged(dir, err)
	}
	return &Store{db: db}, nil
}

// damaged wraps err, met opening the store in dir, with what to do.
func damaged(dir string, err error) error {
	return fmt.Errorf("open pebble store %s: %w (the store is a cache of its changelogs: if it is damaged, delete the directory and start again to have it rebuilt)", dir, err)
}

func dataKey(k string) []byte {
	b := make([]byte, 0, len(k)+1)
	return append(append(b, dataPrefix), k...)
}

func offsetKey(topic string, partition int32) []byte {
	b := make([]byte, 0, len(topic)+6)
	b = append(append(append(b, offsetPrefix), topic...), 0)
	return binary.BigEndian.AppendUint32(b, uint32(partition))
}

// Get implements store.Store.
func (s *Store) Get(key string) ([]byte, bool, error) {
	v, closer, err := s.db.Get(dataKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get %q: %w", key, err)
	}
	out := append([]byte(nil), v...)
	return out, true, closer.Close()
}

// Scan implements store.Store.
func (s *Store) Scan(prefix, after string, fn func(string, []byte) bool) error {
	lower := dataKey(prefix)
	if after >= prefix {
		lower = append(dataKey(after), 0)
	}
	upper := prefixEnd(dataKey(prefix))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("scan %q: %w", prefix, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if !fn(string(it.Key()[1:]), it.Value()) {
			break
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return fmt.Errorf("scan %q: %w", prefix, err)
	}
	return it.Close()
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Offset implements store.Store.
func (s *Store) Offset(topic string, partition int32) (int64, bool, error) {
	v, closer, err := s.db.Get(offsetKey(topic, partition))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("offset of %s/%d: %w", topic, partition, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("offset of %s/%d: corrupt value of %d bytes", topic, partition, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// Apply implements store.Store. It does not fsync: the store is a cache of
// the changelog, and a crash that loses the tail of the write-ahead log loses
// data and offsets together, so start-up catches up from the older offset.
func (s *Store) Apply(b *store.Batch) error {
	pb := s.db.NewBatch()
	defer pb.Close()
	for _, op := range b.Ops {
		var err error
		if op.Delete {
			err = pb.Delete(dataKey(op.Key), nil)
		} else {
			err = pb.Set(dataKey(op.Key), op.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("stage %q: %w", op.Key, err)
		}
	}
	for tp, o := range b.Offsets {
		if err := pb.Set(offsetKey(tp.Topic, tp.Partition), binary.BigEndian.AppendUint64(nil, uint64(o)), nil); err != nil {
			return fmt.Errorf("stage offset of %s/%d: %w", tp.Topic, tp.Partition, err)
		}
	}
	if err := pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("apply batch: %w", err)
	}
	return nil
}

// Close flushes and closes the store.
func (s *Store) Close() error {
	if err := s.db.Flush(); err != nil {
		s.db.Close()
		return fmt.Errorf("flush store: %w", err)
	}
	return s.db.Close()
}

// quietLogger drops Pebble's informational chatter but keeps fatal errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(format string, a ...any) { fmt.Printf("pebble: "+format+"\n", a...) }
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf("pebble: "+format, a...)) }
