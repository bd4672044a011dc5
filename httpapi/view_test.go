package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/eskafka"
)

// A View keyed by something that is no aggregate is read on either of two
// instances: the owner answers, the other forwards to it; a malformed key
// is a 400 naming the wildcard, a missing one a 404 naming what is read.
func TestViewForwardsToTheOwner(t *testing.T) {
	totals := map[string]int{"c0": 10, "c1": 11}
	sa, sb := httptest.NewServer(nil), httptest.NewServer(nil)
	defer sa.Close()
	defer sb.Close()
	owners := map[int32]string{0: sa.URL, 1: sb.URL}
	for _, s := range []*httptest.Server{sa, sb} {
		own := partReader{owners: owners, self: s.URL}
		cfg := testConfig()
		cfg.Peers, cfg.Partitions = &Peers{Self: s.URL, Secret: testSecret}, 2
		cfg.Handle(&View{
			Path:     "/customers/{customer}/total",
			Singular: "total",
			ValidKey: func(k string) error {
				if !strings.HasPrefix(k, "c") {
					return errors.New("a customer starts with c")
				}
				return nil
			},
			Read: Read{
				Get: func(_ context.Context, k string) (any, error) {
					if !own.mine(k) {
						return nil, eskafka.ErrNotOwner
					}
					n, ok := totals[k]
					if !ok {
						return nil, eskafka.ErrNotFound
					}
					return map[string]any{"customer": k, "total": n, "servedBy": s.URL}, nil
				},
				Ownership: own,
			},
		})
		s.Config.Handler = New(cfg)
	}
	for _, base := range []string{sa.URL, sb.URL} {
		for key, owner := range map[string]string{"c0": sa.URL, "c1": sb.URL} {
			var got map[string]any
			getJSON(t, base+"/customers/"+key+"/total", &got)
			if got["customer"] != key || got["servedBy"] != owner {
				t.Errorf("GET %s/customers/%s/total: %v, want it from %s", base, key, got, owner)
			}
		}
	}
	for path, want := range map[string]string{
		"/customers/x1/total": `"status":400`,
		"/customers/c2/total": `total of customer \"c2\" not found`,
	} {
		resp, err := http.Get(sa.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		resp.Body.Close()
		if !strings.Contains(b.String(), want) {
			t.Errorf("GET %s: %d %s, want %s", path, resp.StatusCode, b.String(), want)
		}
	}
}

// A view path without exactly one wildcard is refused when mounted.
func TestViewPathNeedsOneWildcard(t *testing.T) {
	for _, p := range []string{"/totals", "/a/{x}/b/{y}"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("view path %q mounted", p)
				}
			}()
			cfg := testConfig()
			cfg.Handle(&View{Path: p, Singular: "x", Read: Read{Get: func(context.Context, string) (any, error) { return nil, nil }}})
			New(cfg)
		}()
	}
}
