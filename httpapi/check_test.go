package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
)

// histReader is a partReader that keeps histories: positions holds each
// key's last position.
type histReader struct {
	partReader
	positions map[string]int64
}

func (h histReader) History(key string, _ int64, _ int, _ bool) (*eskafka.HistoryPage, error) {
	if !h.mine(key) {
		return nil, eskafka.ErrNotOwner
	}
	p, ok := h.positions[key]
	if !ok {
		return nil, eskafka.ErrNotFound
	}
	return &eskafka.HistoryPage{Total: p, Events: []eskafka.Recorded{}}, nil
}

func (h histReader) StateAt(string, int64, time.Time) (person, *eskafka.Recorded, error) {
	return person{}, nil, eskafka.ErrNotFound
}

func (h histReader) DecodeEvent([]byte) (personEvent, error) { return nil, nil }

// Check tells whether an item exists and the position of its last event,
// from this instance's store or from its owner's answer (PositionHeader),
// which a forwarded read passes on.
func TestCheckGivesThePosition(t *testing.T) {
	all := map[string]person{"p0": {Name: "Ann"}, "p1": {Name: "Bob"}}
	positions := map[string]int64{"p0": 4, "p1": 7, "p3": 2} // p3 was deleted
	sa, sb := httptest.NewServer(nil), httptest.NewServer(nil)
	t.Cleanup(sa.Close)
	t.Cleanup(sb.Close)
	owners := map[int32]string{0: sa.URL, 1: sb.URL}
	var check func(context.Context, string) (Found, error)
	for _, s := range []*httptest.Server{sa, sb} {
		cfg := testConfig()
		cfg.Peers, cfg.Partitions = &Peers{Self: s.URL, Secret: testSecret}, 2
		res := peopleIn(cfg)
		res.Reader = histReader{partReader{all: all, owners: owners, self: s.URL}, positions}
		s.Config.Handler = New(cfg)
		if s == sa {
			check = Check(res, cfg.Peers)
		}
	}
	for _, c := range []struct {
		key  string
		want Found
	}{
		{"p0", Found{Exists: true, Position: 4}}, // this instance's
		{"p1", Found{Exists: true, Position: 7}}, // the other's
		{"p2", Found{}},
		{"p3", Found{}},
	} {
		got, err := check(context.Background(), c.key)
		if err != nil || got != c.want {
			t.Errorf("Check(%s) = %+v, %v; want %+v", c.key, got, err, c.want)
		}
	}
	resp, err := http.Get(sa.URL + "/people/p1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(PositionHeader) != "7" {
		t.Errorf("forwarded GET: %d, %s %q; want 200 and 7", resp.StatusCode, PositionHeader, resp.Header.Get(PositionHeader))
	}
}
