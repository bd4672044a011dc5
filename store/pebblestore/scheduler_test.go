package pebblestore

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/store"
)

// The store's own compaction scheduler still compacts: enough writes for
// several memtable flushes leave level 0 compacted into the levels below,
// and the store closes.
func TestCompactionsAreScheduled(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	value := []byte(strings.Repeat("v", 200))
	for i := range 100 {
		var b store.Batch
		for j := range 1000 {
			b.Put(fmt.Sprintf("s/%08d", (j*7919+i)%100_000*1000+j), value)
		}
		b.SetOffset("t", 0, int64(i+1))
		if err := s.Apply(&b); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Flushes are done; the compactions they called for may still run.
	for range 200 {
		if m := s.db.Metrics(); m.Compact.Count > 0 && m.Levels[0].TablesCount < 4 {
			break
		}
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
		sleep()
	}
	m := s.db.Metrics()
	if m.Compact.Count == 0 || m.Levels[0].TablesCount >= 4 {
		t.Fatalf("after 10 flushes: %d compactions, %d tables in level 0; want some compactions and fewer than 4 tables", m.Compact.Count, m.Levels[0].TablesCount)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func sleep() { time.Sleep(50 * time.Millisecond) }
