package service_test

import (
	"testing"

	"github.com/bookscatalog/catalog/internal/config"
)

// With no KAFKA_BROKERS the service runs its own broker, persisted under
// DATA_DIR: stop and start again and everything is still there, also with
// the local stores deleted (rebuilt from the embedded broker's changelogs).
func TestEmbeddedBrokerPersists(t *testing.T) {
	h := newHarness(t)
	h.Configure = func(cfg *config.Config) {
		cfg.Brokers = nil // the embedded broker
		cfg.EmbeddedAddr = "127.0.0.1:0"
	}
	inst := h.start()
	inst.do("POST", "/authors", map[string]string{"code": "ada", "firstName": "Ada", "lastName": "Lovelace"}, nil).expect(t, 201, nil)
	var b struct {
		ID string `json:"id"`
	}
	inst.do("POST", "/books", map[string]any{"title": "Notes", "authorCode": "ada"}, nil).expect(t, 201, &b)
	inst.stop()

	for _, deleteStores := range []bool{false, true} {
		if deleteStores {
			h.deleteStores(h.DataDir)
		}
		inst := h.start()
		var a struct {
			FirstName string `json:"firstName"`
			Version   int64  `json:"version"`
		}
		inst.get("/authors/ada").expect(t, 200, &a)
		if a.FirstName != "Ada" || a.Version != 1 {
			t.Fatalf("after restart (stores deleted: %v) author = %+v", deleteStores, a)
		}
		var book struct {
			Title      string  `json:"title"`
			AuthorCode *string `json:"authorCode"`
		}
		inst.get("/books/"+b.ID).expect(t, 200, &book)
		if book.Title != "Notes" || book.AuthorCode == nil || *book.AuthorCode != "ada" {
			t.Fatalf("after restart (stores deleted: %v) book = %+v", deleteStores, book)
		}
		inst.stop()
	}
}
