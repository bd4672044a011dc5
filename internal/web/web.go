// Package web serves a service's web application from the service's own
// binary: one page of plain HTML with a little JavaScript that calls the
// JSON API (so every rule and every error message stays the API's), and a
// live panel of the events committed to the events topics, streamed as
// server-sent events. Its assets are embedded; it requests nothing from
// other hosts.
//
// The page knows no aggregate of its own: the service describes each one
// it registers (an Aggregate: its names, key, paths, forms and how to
// label its events), and the page draws its navigation, its views, its
// timelines and its live panel from those descriptions. A service may add
// views of its own for some aggregates with an Extension.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/bookscatalog/catalog/httpapi"
)

//go:embed static
var static embed.FS

// Paths of the application.
const (
	// AssetsPrefix is where the embedded assets are served.
	AssetsPrefix = "/ui/"
	// StreamPath serves the live events (text/event-stream).
	StreamPath = "/events/stream"
)

// Config assembles the application.
type Config struct {
	// Title names the application in the page's header and title
	// (default "Service").
	Title string
	// Aggregates are the aggregates the page shows, in the order of its
	// navigation; the first one is the home page.
	Aggregates []Aggregate
	// TokenHint tells a user asked for a bearer token where to get one.
	TokenHint string
	// Extension holds the service's own additions to the page: each
	// .css file is linked and each .js file loaded before the page's
	// script (in the order of their names), and each .html file (such as
	// <template> elements its scripts use) is added to the page's body.
	// They are served under /ui/ext/. See app.js for what a script may
	// register.
	Extension fs.FS
	// Feed delivers the live events; nil serves 503 at StreamPath.
	Feed *Feed
	// KeepAlive is the interval of the comments that keep an idle event
	// stream open through proxies (default 15 s).
	KeepAlive time.Duration
	// MaxStreams bounds the event streams open at once (default 100); one
	// more is refused with 503 and Retry-After. A stream counts until its
	// handler has returned, one being dropped or stuck in a write included.
	MaxStreams int
	// MaxStreamsPerClient bounds the event streams open at once from one
	// remote address, the connection's peer (X-Forwarded-For is not
	// trusted; default 4); one more is refused with 429.
	MaxStreamsPerClient int
	// StreamWriteTimeout bounds each write to an event stream (default
	// 10 s): a client that stops reading fills its connection's buffers,
	// the write fails and the stream ends, freeing its place.
	StreamWriteTimeout time.Duration
	Logger             *slog.Logger
}

// Handlers returns the application's routes, to mount beside the JSON API:
// the page at /, its assets under /ui/ and the live events at
// /events/stream. It panics if an aggregate's description is invalid or
// the extension cannot be read, as the service cannot serve its page
// then.
func Handlers(cfg Config) map[string]http.Handler {
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 100
	}
	if cfg.MaxStreamsPerClient <= 0 {
		cfg.MaxStreamsPerClient = 4
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Title == "" {
		cfg.Title = "Service"
	}
	if cfg.Feed != nil {
		// Every stream holds a subscription: a feed made with fewer
		// would refuse the streams past its own limit, naming none the
		// operator set.
		cfg.Feed.reserve(cfg.MaxStreams)
	}
	a, err := loadAssets(cfg)
	if err != nil {
		panic(fmt.Sprintf("web: %v", err))
	}
	stream := &streamHandler{
		feed:         cfg.Feed,
		keepAlive:    cfg.KeepAlive,
		writeTimeout: cfg.StreamWriteTimeout,
		limits:       newStreamLimits(cfg.MaxStreams, cfg.MaxStreamsPerClient),
		log:          cfg.Logger,
	}
	return map[string]http.Handler{
		"GET /{$}":            http.HandlerFunc(a.serveIndex),
		"GET " + AssetsPrefix: http.HandlerFunc(a.serveAsset),
		"GET " + StreamPath:   stream,
	}
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
	version     string // a short hash of body, for cache-busting URLs
}

type assets struct {
	index  asset
	byName map[string]asset
}

// securityHeaders are sent with the page and the assets: nothing but this
// origin may be loaded or connected to, and the page may not be framed.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func newAsset(name string, body []byte) asset {
	sum := sha256.Sum256(body)
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	v := hex.EncodeToString(sum[:6])
	return asset{body: body, contentType: ct, etag: `"` + v + `"`, version: v}
}

// extPrefix is where the extension's files are among the assets.
const extPrefix = "ext/"

// loadAssets reads the embedded files and the extension's, and renders
// the page, whose asset URLs carry their content hashes (so they can be
// cached for good) and whose body carries the description of the
// aggregates.
func loadAssets(cfg Config) (*assets, error) {
	aggs, err := aggregates(cfg.Aggregates)
	if err != nil {
		return nil, err
	}
	a := &assets{byName: map[string]asset{}}
	err = fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "static/index.html" {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		a.byName[strings.TrimPrefix(p, "static/")] = newAsset(p, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded assets: %w", err)
	}
	url := func(name string) string {
		return AssetsPrefix + name + "?v=" + a.byName[name].version
	}
	var extCSS, extJS []string
	var extHTML strings.Builder
	if cfg.Extension != nil {
		// fs.WalkDir visits the files in lexical order.
		err = fs.WalkDir(cfg.Extension, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(cfg.Extension, p)
			if err != nil {
				return err
			}
			if path.Ext(p) == ".html" {
				// The service's own markup, as trusted as the page's.
				extHTML.Write(b)
				return nil
			}
			a.byName[extPrefix+p] = newAsset(p, b)
			switch path.Ext(p) {
			case ".css":
				extCSS = append(extCSS, url(extPrefix+p))
			case ".js":
				extJS = append(extJS, url(extPrefix+p))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("the extension's assets: %w", err)
		}
	}
	app, err := pageConfig{Title: cfg.Title, Stream: StreamPath, TokenHint: cfg.TokenHint, Aggregates: aggs}.json()
	if err != nil {
		return nil, err
	}
	tpl, err := template.ParseFS(static, "static/index.html")
	if err != nil {
		return nil, fmt.Errorf("parse the page: %w", err)
	}
	var buf bytes.Buffer
	err = tpl.Execute(&buf, map[string]any{
		"Title": cfg.Title, "CSS": url("app.css"), "JS": url("app.js"), "Stream": StreamPath, "App": app,
		// The extension's markup is the service's own, embedded in it.
		"ExtCSS": extCSS, "ExtJS": extJS, "ExtHTML": template.HTML(extHTML.String()),
	})
	if err != nil {
		return nil, fmt.Errorf("render the page: %w", err)
	}
	a.index = newAsset("index.html", buf.Bytes())
	return a, nil
}

func (a *assets) serveIndex(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-cache")
	serve(w, r, a.index)
}

func (a *assets) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, AssetsPrefix)
	f, ok := a.byName[name]
	if !ok {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("no asset %s", httpapi.Quote(name)))
		return
	}
	securityHeaders(w.Header())
	if v := r.URL.Query().Get("v"); v == f.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	serve(w, r, f)
}

// serve writes f, or 304 when the client has it (If-None-Match).
func serve(w http.ResponseWriter, r *http.Request, f asset) {
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// writeProblem writes an RFC 9457 problem, as the JSON API does.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail,
	})
}
