package service_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
)

// TestUndecodableViewDoesNotEatItsKeysEvents: one record on the view's
// changelog that does not decode (a stray producer, a half-written tool,
// a bad migration) is restored as it is into the store. The next input for
// that author code starts its view again (logged), and the view follows
// what comes after. Before, every input for the code failed to decode the
// stored view: the stage failed whole sessions (every partition of the lane
// stalled for seconds) and then dead-lettered the input, so every later
// change to the author (new books, renames, its deletion and the reaction)
// was lost.
func TestUndecodableViewDoesNotEatItsKeysEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inst := h.start()
	const code = "austen"
	inst.createAuthor(t, code, "Jane", "Austen")
	inst.awaitAuthorBooks(t, code, booksOf(code, "Jane", "Austen"))

	// One undecodable record of the view's changelog, on the code's
	// partition, then a restart (which catches the store up).
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{
		Topic: h.Service + ".booksbyauthor.changelog", Partition: eskafka.PartitionFor(code, h.Partitions),
		Key: []byte(code), Value: []byte("not a view"),
	}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	inst.stop()
	inst = h.start()

	// Legal commands about the author, after the bad record.
	b := inst.createBook(t, map[string]any{"title": "Emma", "authorCode": code}, nil)
	inst.do(http.MethodPut, "/authors/"+code, map[string]string{"firstName": "Jane", "lastName": "Austen (1775-1817)"}, nil).expect(t, http.StatusOK, nil)
	start := time.Now()
	deadline := start.Add(readModelWait)
	for {
		r := inst.get("/authors/" + code + "/books")
		if r.Status == http.StatusOK && bytes.Contains(r.Body, []byte(b.ID)) && bytes.Contains(r.Body, []byte("1817")) {
			return
		}
		if time.Now().After(deadline) {
			dl := h.readCommitted(h.Service + ".booksbyauthor.deadletter")
			t.Fatalf("after %s the view of %s still does not follow its book and rename: %s; %d inputs in the read model's dead-letter topic", readModelWait, code, r, len(dl))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
