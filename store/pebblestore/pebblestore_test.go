package pebblestore_test

import (
	"fmt"
	"testing"

	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/pebblestore"
	"github.com/bookscatalog/catalog/store/storetest"
)

func TestConformance(t *testing.T) {
	dirs := map[string]string{}
	storetest.Run(t, func(t *testing.T) store.Store {
		dir, ok := dirs[t.Name()]
		if !ok {
			dir = t.TempDir()
			dirs[t.Name()] = dir
		}
		s, err := pebblestore.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, true)
}

func BenchmarkApply(b *testing.B) {
	s, err := pebblestore.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	val := make([]byte, 100)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var batch store.Batch
		for j := range 100 {
			batch.Put(fmt.Sprintf("s/%08d-%d", i, j), val)
		}
		batch.SetOffset("cl", 0, int64(i))
		if err := s.Apply(&batch); err != nil {
			b.Fatal(err)
		}
	}
}
