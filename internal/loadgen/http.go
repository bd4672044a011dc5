package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// httpDriver sends the requests of ModeHTTP and ModeHTTPRead.
type httpDriver struct {
	opts *Options
	hc   *http.Client
	seq  atomic.Int64 // numbers the authors created
	keys []string     // the authors ModeHTTPRead reads
}

// newHTTPDriver returns a driver on opts.URLs after checking that every one
// answers GET /readyz with 200.
func newHTTPDriver(ctx context.Context, opts *Options) (*httpDriver, error) {
	tr := &http.Transport{
		// Only the URLs given: no proxy from the environment.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        opts.Clients * len(opts.URLs),
		MaxIdleConnsPerHost: opts.Clients,
		IdleConnTimeout:     90 * time.Second,
	}
	d := &httpDriver{opts: opts, hc: &http.Client{
		Transport: tr,
		// A redirect is an answer to count, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	for _, u := range opts.URLs {
		rctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		status, kind := d.send(rctx, http.MethodGet, u+"/readyz", "", http.StatusOK)
		cancel()
		if kind != "" {
			d.close()
			if status != 0 {
				return nil, fmt.Errorf("%s is not ready: GET /readyz answered %s", u, kind)
			}
			return nil, fmt.Errorf("%s is not reachable: %s", u, kind)
		}
	}
	return d, nil
}

func (d *httpDriver) close() { d.hc.CloseIdleConnections() }

// newCode returns a code no other author of any run has.
func (d *httpDriver) newCode() string {
	return d.opts.Prefix + "-" + strconv.FormatInt(d.seq.Add(1), 36)
}

func (d *httpDriver) client(int) client {
	if d.opts.Mode == ModeHTTPRead {
		return &httpReader{d: d}
	}
	return &httpWriter{d: d, mixer: mixer{mix: d.opts.Mix}}
}

// send sends one request and reads the whole answer; kind is "" when
// the status is want, else the status ("409 Conflict") or the transport
// error's class.
func (d *httpDriver) send(ctx context.Context, method, url, body string, want int) (status int, kind string) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, "request: " + trim(err.Error(), 80)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	d.authorize(req)
	resp, err := d.hc.Do(req)
	if err != nil {
		return 0, errKind(err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, errKind(err)
	}
	if resp.StatusCode != want {
		return resp.StatusCode, statusKind(resp.StatusCode)
	}
	return resp.StatusCode, ""
}

// authorize adds the bearer token, if any.
func (d *httpDriver) authorize(req *http.Request) {
	if d.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+d.opts.Token)
	}
}

func statusKind(code int) string { return strconv.Itoa(code) + " " + http.StatusText(code) }

// mixer chooses a client's next write: it repeats mix.Create creates and
// mix.Update updates of the authors created (successfully) in the same
// cycle; with none, an update becomes a create.
type mixer struct {
	mix     Mix
	pos     int
	created []string
}

// next returns the code of the author to update, or "" for a create.
func (m *mixer) next() (update string) {
	p := m.pos
	m.pos = (m.pos + 1) % (m.mix.Create + m.mix.Update)
	if p == 0 {
		m.created = m.created[:0]
	}
	if p < m.mix.Create || len(m.created) == 0 {
		return ""
	}
	return m.created[(p-m.mix.Create)%len(m.created)]
}

// createdOK records a successful create.
func (m *mixer) createdOK(code string) { m.created = append(m.created, code) }

// httpWriter writes as its mixer says.
type httpWriter struct {
	d *httpDriver
	mixer
	updates int
}

func (c *httpWriter) do(ctx context.Context, i int64) (op, kind string) {
	base := c.d.opts.URLs[i%int64(len(c.d.opts.URLs))]
	code := c.next()
	if code == "" {
		code = c.d.newCode()
		_, kind = c.d.send(ctx, http.MethodPost, base+"/authors",
			`{"code":"`+code+`","firstName":"Load","lastName":"Generator"}`, http.StatusCreated)
		if kind == "" {
			c.createdOK(code)
		}
		return "create", kind
	}
	c.updates++
	_, kind = c.d.send(ctx, http.MethodPut, base+"/authors/"+code,
		`{"firstName":"Load","lastName":"Generator `+strconv.Itoa(c.updates)+`"}`, http.StatusOK)
	return "update", kind
}

// httpReader reads the driver's keys in turn.
type httpReader struct{ d *httpDriver }

func (c *httpReader) do(ctx context.Context, i int64) (op, kind string) {
	// Every key is read through every URL in turn.
	n := int64(len(c.d.opts.URLs))
	base, key := c.d.opts.URLs[i%n], c.d.keys[(i/n)%int64(len(c.d.keys))]
	_, kind = c.d.send(ctx, http.MethodGet, base+"/authors/"+url.PathEscape(key), "", http.StatusOK)
	return "read", kind
}

// prepareReads finds the authors a read run reads: it creates opts.Seed of
// them (with opts.Clients clients), or lists the existing ones when Seed is
// negative.
func (d *httpDriver) prepareReads(ctx context.Context, opts *Options) error {
	if opts.Seed < 0 {
		return d.listKeys(ctx)
	}
	start := time.Now()
	seedOpts := *opts
	seedOpts.Count, seedOpts.Duration, seedOpts.Rate, seedOpts.Progress = int64(opts.Seed), DefaultMaxDuration, 0, nil
	seedOpts.Clients = min(opts.Clients, opts.Seed)
	s := &seeder{d: d}
	st, _, interrupted := drive(ctx, &seedOpts, s)
	if interrupted {
		return fmt.Errorf("seeding interrupted: %w", ctx.Err())
	}
	if n := st.errorCount(); n > 0 {
		return fmt.Errorf("seeding: %d of %d creates failed (%s)", n, opts.Seed, formatKinds(st.errorKinds()))
	}
	d.keys = s.codes
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "loadgen: created %d authors to read in %s\n", len(d.keys), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// seeder creates authors and remembers their codes.
type seeder struct {
	d     *httpDriver
	mu    sync.Mutex
	codes []string
}

func (s *seeder) client(int) client { return s }
func (s *seeder) close()            {}

func (s *seeder) do(ctx context.Context, i int64) (op, kind string) {
	base := s.d.opts.URLs[i%int64(len(s.d.opts.URLs))]
	code := s.d.newCode()
	_, kind = s.d.send(ctx, http.MethodPost, base+"/authors",
		`{"code":"`+code+`","firstName":"Load","lastName":"Reader"}`, http.StatusCreated)
	if kind == "" {
		s.mu.Lock()
		s.codes = append(s.codes, code)
		s.mu.Unlock()
	}
	return "create", kind
}

// listKeys lists the existing authors (GET /authors, page by page) up to
// MaxSeed.
func (d *httpDriver) listKeys(ctx context.Context) error {
	base := d.opts.URLs[0]
	after := ""
	for len(d.keys) < MaxSeed {
		u := base + "/authors?limit=1000"
		if after != "" {
			u += "&after=" + url.QueryEscape(after)
		}
		var page struct {
			Items []struct {
				Code string `json:"code"`
			} `json:"items"`
			Next string `json:"next"`
		}
		if err := d.getJSON(ctx, u, &page); err != nil {
			return fmt.Errorf("list authors: %w", err)
		}
		for _, it := range page.Items {
			d.keys = append(d.keys, it.Code)
		}
		if page.Next == "" || len(page.Items) == 0 {
			break
		}
		after = page.Next
	}
	if len(d.keys) == 0 {
		return errors.New("no authors to read: create some, or let loadgen create them (-seed N)")
	}
	if d.opts.Progress != nil {
		fmt.Fprintf(d.opts.Progress, "loadgen: listed %d authors to read\n", len(d.keys))
	}
	return nil
}

func (d *httpDriver) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	d.authorize(req)
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, statusKind(resp.StatusCode))
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v)
}

func formatKinds(kinds []ErrorKind) string {
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s: %d", k.Kind, k.Count)
	}
	return strings.Join(parts, ", ")
}
