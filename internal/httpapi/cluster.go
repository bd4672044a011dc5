package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bookscatalog/catalog/internal/eskafka"
)

// ForwardedHeader marks a request one instance forwarded to another; a
// forwarded request is never forwarded again (one hop at most).
const ForwardedHeader = "X-Catalog-Forwarded"

// Ownership tells which instance serves which key (eskafka.Stage
// implements it).
type Ownership interface {
	// Owner returns the advertised URL of the key's owner, "" if unknown.
	Owner(key string) string
	// Owners returns the partition -> advertised URL map.
	Owners() map[int32]string
}

// Peers forwards reads to the instance that owns a key.
type Peers struct {
	// Self is this instance's advertised URL.
	Self string
	// Client makes the forwarded requests.
	Client *http.Client
}

func (p *Peers) client() *http.Client {
	if p != nil && p.Client != nil {
		return p.Client
	}
	return http.DefaultClient
}

// forward answers r from the owner of key; it reports false when it did not
// answer (no owner known, or the owner is this instance).
func (p *Peers) forward(w http.ResponseWriter, r *http.Request, own Ownership, key string) bool {
	if p == nil || own == nil || r.Header.Get(ForwardedHeader) != "" {
		return false
	}
	owner := own.Owner(key)
	if owner == "" || owner == p.Self {
		return false
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, owner+r.URL.RequestURI(), nil)
	if err != nil {
		return false
	}
	req.Header.Set(ForwardedHeader, p.Self)
	req.Header.Set("Accept", r.Header.Get("Accept"))
	resp, err := p.client().Do(req)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, problem(http.StatusServiceUnavailable, "the owner of %s (%s) did not answer: %v", quoted(key), owner, err))
		return true
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "ETag", "Retry-After", "Location"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("X-Catalog-Served-By", owner)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return true
}

// get fetches path from peer (one hop) and decodes a JSON answer into v.
func (p *Peers) get(ctx context.Context, peer, path string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peer+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set(ForwardedHeader, p.Self)
	resp, err := p.client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v)
}

// instances returns the distinct owner URLs of own, and whether some
// partition has no known owner.
func instances(own Ownership, partitions int) (urls []string, gap bool) {
	owners := own.Owners()
	for p := range partitions {
		u, ok := owners[int32(p)]
		if !ok || u == "" {
			gap = true
			continue
		}
		if !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	slices.Sort(urls)
	return urls, gap
}

type keyedItem struct {
	key  string
	item json.RawMessage
}

// listAll serves a list read by merging the local answers of every
// instance, keeping the cursor contract: items in key order, "next" set
// when more may follow.
func (res *Resource[S, C, E]) listAll(w http.ResponseWriter, r *http.Request, limit int, after string) {
	urls, gap := instances(res.Ownership, res.Partitions)
	if gap {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, problem(http.StatusServiceUnavailable, "some partitions of %s have no owner right now (rebalancing); retry shortly", res.Name))
		return
	}
	var all []keyedItem
	more := false
	for _, u := range urls {
		var page struct {
			Items []json.RawMessage `json:"items"`
			Next  string            `json:"next"`
		}
		if u == res.Peers.Self {
			items, keys, partial, err := res.Reader.List(after, limit)
			if err != nil || partial {
				w.Header().Set("Retry-After", "1")
				writeProblem(w, problem(http.StatusServiceUnavailable, "this instance cannot list %s now (restoring)", res.Name))
				return
			}
			for i, s := range items {
				b, _ := json.Marshal(res.Render(s))
				all = append(all, keyedItem{keys[i], b})
			}
			more = more || len(items) == limit
			continue
		}
		q := url.Values{"local": {"true"}, "limit": {strconv.Itoa(limit)}}
		if after != "" {
			q.Set("after", encodeCursor(after))
		}
		status, err := res.Peers.get(r.Context(), u, "/"+res.Name+"?"+q.Encode(), &page)
		if err != nil || status != http.StatusOK {
			w.Header().Set("Retry-After", "1")
			writeProblem(w, problem(http.StatusServiceUnavailable, "instance %s did not answer the list (status %d, %v); retry shortly", u, status, err))
			return
		}
		for _, it := range page.Items {
			var k map[string]any
			if err := json.Unmarshal(it, &k); err != nil {
				writeProblem(w, problem(http.StatusBadGateway, "instance %s answered an undecodable item", u))
				return
			}
			key, _ := k[res.KeyField].(string)
			all = append(all, keyedItem{key, it})
		}
		more = more || page.Next != ""
	}
	slices.SortFunc(all, func(a, b keyedItem) int { return strings.Compare(a.key, b.key) })
	if len(all) > limit {
		all, more = all[:limit], true
	}
	out := struct {
		Items []json.RawMessage `json:"items"`
		Next  string            `json:"next,omitempty"`
	}{Items: make([]json.RawMessage, len(all))}
	for i, it := range all {
		out.Items[i] = it.item
	}
	if more && len(all) > 0 {
		out.Next = encodeCursor(all[len(all)-1].key)
	}
	writeJSON(w, http.StatusOK, out)
}

// ErrPeerUnavailable: the instance that owns a key did not answer, or
// answered 503 (its partition is moving); retry shortly.
var ErrPeerUnavailable = errors.New("the owner is unavailable")

// RemoteExists asks the owner of an author whether it exists.
func (p *Peers) RemoteExists(ctx context.Context, own Ownership, code string) (bool, error) {
	owner := own.Owner(code)
	if owner == "" || owner == p.Self {
		return false, eskafka.ErrRestoring
	}
	var v map[string]any
	status, err := p.get(ctx, owner, "/authors/"+url.PathEscape(code), &v)
	switch {
	case err != nil:
		return false, fmt.Errorf("ask %s: %w: %w", owner, ErrPeerUnavailable, err)
	case status == http.StatusOK:
		return true, nil
	case status == http.StatusNotFound:
		return false, nil
	case status == http.StatusServiceUnavailable:
		return false, fmt.Errorf("ask %s: %w: it answered 503", owner, ErrPeerUnavailable)
	}
	return false, fmt.Errorf("ask %s: status %d: %w", owner, status, errors.New("unexpected answer"))
}
