package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestExposition(t *testing.T) {
	m := New()
	m.Command("authors", "CreateAuthor", "accepted", "")
	m.Command("authors", "CreateAuthor", "rejected", "already_exists")
	m.Transaction("authors.processor", 7, true, 3*time.Millisecond)
	m.Transaction("authors.processor", 2, false, time.Millisecond)
	m.Lag("authors.processor", "catalog.authors.commands", 4, 12)
	m.Restored("authors.processor", 100)
	m.Request("GET /authors/{code}", 200, 2*time.Millisecond, true)
	m.Request("", 404, time.Millisecond, false)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`catalog_commands_total{aggregate="authors",code="",status="accepted",type="CreateAuthor"} 1`,
		`catalog_commands_total{aggregate="authors",code="already_exists",status="rejected",type="CreateAuthor"} 1`,
		`catalog_transactions_total{result="commit",stage="authors.processor"} 1`,
		`catalog_transactions_total{result="abort",stage="authors.processor"} 1`,
		`catalog_batch_records_sum{stage="authors.processor"} 7`,
		`catalog_consumer_lag_records{partition="4",stage="authors.processor",topic="catalog.authors.commands"} 12`,
		`catalog_restored_records_total{stage="authors.processor"} 100`,
		`catalog_http_requests_total{route="GET /authors/{code}",status="200"} 1`,
		`catalog_http_requests_total{route="unmatched",status="404"} 1`,
		`catalog_forwarded_requests_total{route="GET /authors/{code}"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
}

// A label value that is not valid UTF-8 (the Prometheus client panics on
// it) or is unboundedly long becomes "invalid"; poisoned records and stage
// health are exported.
func TestLabelsAreGuarded(t *testing.T) {
	m := New()
	m.Command("authors", "\xff\xfe", "accepted", "")
	m.Command("authors", strings.Repeat("t", 10_000), "accepted", "")
	m.Poisoned("books.processor", "too_large")
	m.Fenced("authors.processor")
	healthy := false
	m.WatchStage("books.processor", func() bool { return healthy })
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`catalog_commands_total{aggregate="authors",code="",status="accepted",type="invalid"} 2`,
		`catalog_poisoned_records_total{kind="too_large",stage="books.processor"} 1`,
		`catalog_fenced_transactions_total{stage="authors.processor"} 1`,
		`catalog_stage_healthy{stage="books.processor"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
}
