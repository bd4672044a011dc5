package memstore_test

import (
	"testing"

	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/memstore"
	"github.com/bookscatalog/catalog/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return memstore.New() }, false)
}
