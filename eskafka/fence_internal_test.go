package eskafka

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestDepartedTransactions: only an open transaction of this stage's group,
// of an instance no member has, writing only the stage's own topics, is
// fenced.
func TestDepartedTransactions(t *testing.T) {
	const group = "svc.books.processor"
	outputs := []string{"svc.books.events", "svc.books.results", "svc.books.changelog"}
	members := map[string]bool{"a": true, "a.lane1": true}
	topics := func(ts ...string) kadm.TopicsSet {
		set := kadm.TopicsSet{}
		for _, topic := range ts {
			set.Add(topic, 0)
		}
		return set
	}
	described := kadm.DescribedTransactions{}
	add := func(id, state string, ts kadm.TopicsSet, err error) {
		described[id] = kadm.DescribedTransaction{TxnID: id, State: state, Topics: ts, Err: err}
	}
	add(group+".a", "Ongoing", topics("svc.books.events", "__consumer_offsets"), nil)     // a live member
	add(group+".a.lane1", "Ongoing", topics("svc.books.changelog"), nil)                  // a live member's second lane
	add(group+".b", "Ongoing", topics("svc.books.events", "__consumer_offsets"), nil)     // departed: fenced
	add(group+".b.lane1", "Ongoing", topics("svc.books.changelog"), nil)                  // departed lane: fenced
	add(group+".a.overlap", "Ongoing", topics("svc.books.events"), nil)                   // a live member's second producer
	add(group+".b.lane1.overlap", "Ongoing", topics("svc.books.events"), nil)             // a departed one's: fenced
	add(group+".view.c", "Ongoing", topics("svc.books.view.changelog"), nil)              // a stage named "processor.view"
	add(group+".d", "PrepareCommit", topics("svc.books.events"), nil)                     // ending by itself
	add(group+".e", "Ongoing", topics("svc.books.events", "other.topic"), nil)            // writes more than ours
	add(group+".f", "Ongoing", topics("__consumer_offsets"), nil)                         // none of ours
	add(group+".g", "Ongoing", topics("svc.books.events"), errors.New("NOT_COORDINATOR")) // not described
	add(group+"x.h", "Ongoing", topics("svc.books.events"), nil)                          // another group
	add(group+".", "Ongoing", topics("svc.books.events"), nil)                            // no instance id

	got := departedTransactions(group, members, nil, outputs, described)
	want := []string{group + ".b", group + ".b.lane1", group + ".b.lane1.overlap"}
	if !slices.Equal(got, want) {
		t.Errorf("departedTransactions = %q, want %q", got, want)
	}

	// This instance ("a") no longer overlaps: its second id is retired,
	// its first is not.
	retired := map[string]bool{group + ".a.overlap": true}
	got = departedTransactions(group, members, retired, outputs, described)
	want = []string{group + ".a.overlap", group + ".b", group + ".b.lane1", group + ".b.lane1.overlap"}
	if !slices.Equal(got, want) {
		t.Errorf("departedTransactions with %v retired = %q, want %q", retired, got, want)
	}
}
