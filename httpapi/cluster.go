package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
)

// ForwardedHeader marks a request one instance forwarded to another; a
// forwarded request is never forwarded again (one hop at most), and a list
// request carrying it answers from the instance's own partitions only.
// With a cluster secret, it counts only with a valid ProofHeader.
const ForwardedHeader = "X-Catalog-Forwarded"

// ProofHeader carries the proof of a forwarded request:
// "v1.<unix seconds>.<HMAC-SHA256, base64url>" over the method, the
// receiving instance's advertised URL, the request URI, the time and the
// forwarding instance's URL, keyed by the cluster secret.
const ProofHeader = "X-Catalog-Proof"

// ProofWindow is how far a forwarded request's time may be from the
// receiver's clock: it bounds a replay of a captured request, and the
// instances' clocks must agree within it.
const ProofWindow = time.Minute

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
	// Secret is the cluster secret (CLUSTER_SECRET): with it, forwarded
	// requests carry a proof (ProofHeader) and requests that claim to be
	// forwarded without a valid one are refused. Without it a forwarding
	// header is taken at its word.
	Secret []byte
	// Now is the clock (tests).
	Now func() time.Time
	// Logger hears of the instances that could not be asked or answered
	// what is not passed on, named by their URLs, which the problems
	// answered to callers leave out (default slog.Default()).
	Logger *slog.Logger
}

// logger returns p's Logger, or slog.Default().
func (p *Peers) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// peerProblem writes a problem about another instance, which it names
// only in the log: the advertised URLs are internal, and /metadata, which
// lists them, is for admins, while this answers anyone who may read.
func (p *Peers) peerProblem(w http.ResponseWriter, pr *Problem, peer string, err error) {
	p.logger().Warn("another instance could not answer a read", "peer", peer, "status", pr.Status, "detail", pr.Detail, "err", err)
	writeProblem(w, pr)
}

func (p *Peers) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// forwardKey derives the key of forwarding proofs from the cluster secret,
// so that it never equals a key used for anything else.
func forwardKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("catalog forwarded request v1"))
	return m.Sum(nil)
}

// proof returns the MAC of a forwarded request.
func proof(secret []byte, method, target, requestURI, ts, from string) []byte {
	m := hmac.New(sha256.New, forwardKey(secret))
	for _, part := range []string{"v1", method, target, requestURI, ts, from} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// prepare marks req, about to go to the instance at target, as forwarded
// by this one, with a proof when there is a secret.
func (p *Peers) prepare(req *http.Request, target string) {
	req.Header.Set(ForwardedHeader, p.Self)
	if len(p.Secret) == 0 {
		return
	}
	ts := strconv.FormatInt(p.now().Unix(), 10)
	mac := proof(p.Secret, req.Method, target, req.URL.RequestURI(), ts, p.Self)
	req.Header.Set(ProofHeader, "v1."+ts+"."+base64.RawURLEncoding.EncodeToString(mac))
}

// verify checks the proof of a request that claims to be forwarded to
// this instance.
func (p *Peers) verify(r *http.Request) error {
	v := r.Header.Get(ProofHeader)
	if v == "" {
		return errors.New("it has no proof")
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return errors.New("its proof is malformed")
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return errors.New("its proof is malformed")
	}
	if d := p.now().Sub(time.Unix(sec, 0)); d > ProofWindow || d < -ProofWindow {
		return fmt.Errorf("its proof is %s away from this instance's clock (at most %s)", d.Round(time.Second), ProofWindow)
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return errors.New("its proof is malformed")
	}
	want := proof(p.Secret, r.Method, p.Self, r.URL.RequestURI(), parts[1], r.Header.Get(ForwardedHeader))
	if !hmac.Equal(got, want) {
		return errors.New("its proof does not verify (not sent by an instance with this CLUSTER_SECRET, or altered)")
	}
	return nil
}

// forwardedByPeer reports whether r was forwarded by another instance, with
// a valid proof (so never without a cluster secret).
func (p *Peers) forwardedByPeer(r *http.Request) bool {
	return p != nil && len(p.Secret) > 0 && r.Header.Get(ForwardedHeader) != "" && p.verify(r) == nil
}

// checkForwarded vets requests that claim to come from another instance
// (ForwardedHeader): with a cluster secret, one without a valid proof is
// refused (400) rather than answered as forwarded (a partial list, a read
// without a token); one with a valid proof is marked for authorize. The
// header is refused rather than ignored so that instances whose clocks or
// secrets disagree fail loudly instead of forwarding in a loop.
func checkForwarded(peers *Peers, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(ForwardedHeader) == "" || peers == nil || len(peers.Secret) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if err := peers.verify(r); err != nil {
			p := problem(http.StatusBadRequest, "%s is for requests between instances of this service, and this one is not from one: %v", ForwardedHeader, err)
			p.Field = ForwardedHeader
			writeProblem(w, p)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardedKey{}, true)))
	})
}

// client returns the client of forwarded requests, which never follows a
// redirect: a peer, or whatever answers in its place, could send it to any
// URL.
func (p *Peers) client() *http.Client {
	c := *http.DefaultClient
	if p != nil && p.Client != nil {
		c = *p.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
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
	if !eskafka.IsOrigin(owner) {
		w.Header().Set("Retry-After", "1")
		p.peerProblem(w, problem(http.StatusServiceUnavailable, "the owner of %s advertises a URL that is not an http(s) origin; not forwarded", quoted(key)), owner, nil)
		return true
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, owner+r.URL.RequestURI(), nil)
	if err != nil {
		return false
	}
	p.prepare(req, owner)
	req.Header.Set("Accept", r.Header.Get("Accept"))
	resp, err := p.client().Do(req)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		p.peerProblem(w, problem(http.StatusServiceUnavailable, "the instance that owns %s did not answer; retry shortly", quoted(key)), owner, err)
		return true
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.StatusCode != http.StatusNotModified {
		p.peerProblem(w, problem(http.StatusBadGateway, "the instance that owns %s answered a redirect (%d), which is not followed", quoted(key), resp.StatusCode), owner, nil)
		return true
	}
	// The owner answers JSON; anything else (a rogue member's HTML, say)
	// is not served from this origin, nor is a redirect elsewhere.
	ct := resp.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" && mt != "application/problem+json" && (ct != "" || resp.StatusCode != http.StatusNotModified) {
		p.peerProblem(w, problem(http.StatusBadGateway, "the instance that owns %s answered %s, not JSON; not passed on", quoted(key), quoted(ct)), owner, nil)
		return true
	}
	for _, h := range []string{"Content-Type", "ETag", "Retry-After", PositionHeader} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, "/\\") {
		w.Header().Set("Location", loc)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// That another instance answered, not which: its advertised URL is
	// internal, and /metadata, which lists them, is for admins.
	w.Header().Set("X-Catalog-Served-By", servedByPeer)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return true
}

// servedByPeer is the X-Catalog-Served-By of an answer another instance
// gave.
const servedByPeer = "peer"

// get fetches path from peer (one hop) and decodes a JSON answer into v.
func (p *Peers) get(ctx context.Context, peer, path string, v any) (int, error) {
	status, _, err := p.getWithHeader(ctx, peer, path, v)
	return status, err
}

// getWithHeader is get, also returning the answer's header.
func (p *Peers) getWithHeader(ctx context.Context, peer, path string, v any) (int, http.Header, error) {
	if !eskafka.IsOrigin(peer) {
		return 0, nil, fmt.Errorf("%s is not an http(s) origin; not asked", quoted(peer))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peer+path, nil)
	if err != nil {
		return 0, nil, err
	}
	p.prepare(req, peer)
	resp, err := p.client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header, nil
	}
	return resp.StatusCode, resp.Header, json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v)
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
// when more may follow. Each instance answers its items' keys beside them
// (Page.Keys), the keys its store lists them by, which are also what the
// cursor holds: the merge never reads a key out of a representation.
func (res *Resource[S, C, E]) listAll(w http.ResponseWriter, r *http.Request, limit int, after string) {
	urls, gap := instances(res.ownership(), res.partitions)
	if gap {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, problem(http.StatusServiceUnavailable, "some partitions of %s have no owner right now (rebalancing); retry shortly", res.name()))
		return
	}
	var all []keyedItem
	// cutoff is the smallest last key of the instances that have more:
	// past it, the merge does not know every instance's items.
	var cutoff *string
	cut := func(items []keyedItem, more bool) {
		all = append(all, items...)
		if more && len(items) > 0 && (cutoff == nil || items[len(items)-1].key < *cutoff) {
			cutoff = &items[len(items)-1].key
		}
	}
	for _, u := range urls {
		if u == res.peers.Self {
			items, more, partial, err := res.localPage(after, limit)
			if err != nil {
				writeProblem(w, problem(http.StatusInternalServerError, "list %s: %v", res.name(), err))
				return
			}
			if partial {
				w.Header().Set("Retry-After", "1")
				writeProblem(w, problem(http.StatusServiceUnavailable, "this instance cannot list %s now (restoring)", res.name()))
				return
			}
			cut(items, more)
			continue
		}
		var page struct {
			Items []json.RawMessage `json:"items"`
			Next  string            `json:"next"`
			Keys  []string          `json:"keys"`
		}
		q := url.Values{"local": {"true"}, "limit": {strconv.Itoa(limit)}}
		if after != "" {
			q.Set("after", encodeCursor(after))
		}
		status, err := res.peers.get(r.Context(), u, "/"+res.name()+"?"+q.Encode(), &page)
		if err != nil || status != http.StatusOK {
			w.Header().Set("Retry-After", "1")
			res.peers.peerProblem(w, problem(http.StatusServiceUnavailable, "another instance did not answer the list (status %d); retry shortly", status), u, err)
			return
		}
		if len(page.Keys) != len(page.Items) {
			// An instance of an earlier version, which did not send
			// keys, during a rolling upgrade: the list is refused
			// rather than merged out of order.
			w.Header().Set("Retry-After", "1")
			res.peers.peerProblem(w, problem(http.StatusServiceUnavailable, "another instance answered %d items with %d keys (is it of an earlier version?); retry shortly", len(page.Items), len(page.Keys)), u, nil)
			return
		}
		items := make([]keyedItem, len(page.Items))
		for i, it := range page.Items {
			items[i] = keyedItem{page.Keys[i], it}
		}
		cut(items, page.Next != "")
	}
	slices.SortFunc(all, func(a, b keyedItem) int { return strings.Compare(a.key, b.key) })
	more := cutoff != nil
	if more {
		all = all[:sort.Search(len(all), func(i int) bool { return all[i].key > *cutoff })]
	}
	size := 0
	for i, it := range all {
		if size += len(it.item); i+1 == limit || size >= MaxPageBytes {
			more = more || i+1 < len(all)
			all = all[:i+1]
			break
		}
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

// PositionHeader carries, on GET /{name}/{key}, the position of the
// item's last event in its history (1, 2, 3…, never reset when the item is
// deleted and created again), when its Reader keeps histories.
const PositionHeader = "X-Catalog-Position"

// Found is what Check learns of an item.
type Found struct {
	// Exists reports whether the item exists.
	Exists bool
	// Position is the position of the item's last event in its history,
	// read no earlier than Exists; 0 when unknown (the Reader keeps no
	// history). An item deleted and created again continues its history,
	// so the position tells which life of the item was seen.
	Position int64
}

// Check reports whether the item key of res exists and at which position
// of its history, asking its owner when another instance owns it: a check
// one aggregate makes of another before a command (see
// Resource.Precheck). peers may be nil (this instance only).
func Check[S, C, E any](res *Resource[S, C, E], peers *Peers) func(ctx context.Context, key string) (Found, error) {
	return func(ctx context.Context, key string) (Found, error) {
		_, err := res.Reader.Get(key)
		switch {
		case errors.Is(err, eskafka.ErrNotFound):
			return Found{}, nil
		case errors.Is(err, eskafka.ErrNotOwner) && peers != nil && res.ownership() != nil:
			return peers.remoteCheck(ctx, res.ownership(), "/"+res.name()+"/", key)
		case err != nil:
			return Found{}, err
		}
		pos, _ := res.lastPosition(key)
		return Found{Exists: true, Position: pos}, nil
	}
}

// remoteCheck asks the owner of key whether the item at prefix+key exists,
// and its position (PositionHeader).
func (p *Peers) remoteCheck(ctx context.Context, own Ownership, prefix, key string) (Found, error) {
	owner := own.Owner(key)
	if owner == "" || owner == p.Self {
		return Found{}, eskafka.ErrRestoring
	}
	var v map[string]any
	status, h, err := p.getWithHeader(ctx, owner, prefix+url.PathEscape(key), &v)
	switch {
	case err != nil:
		return Found{}, fmt.Errorf("ask %s: %w: %w", owner, ErrPeerUnavailable, err)
	case status == http.StatusOK:
		// A missing or malformed position is unknown: the check stands.
		pos, err := strconv.ParseInt(h.Get(PositionHeader), 10, 64)
		if err != nil || pos < 0 {
			pos = 0
		}
		return Found{Exists: true, Position: pos}, nil
	case status == http.StatusNotFound:
		return Found{}, nil
	case status == http.StatusServiceUnavailable:
		return Found{}, fmt.Errorf("ask %s: %w: it answered 503", owner, ErrPeerUnavailable)
	}
	return Found{}, fmt.Errorf("ask %s: status %d: %w", owner, status, errors.New("unexpected answer"))
}
