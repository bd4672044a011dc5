package web

import (
	"encoding/json"
	"html"
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// appConfig returns the description of the application the page at url
// carries in its body's data-app attribute.
func appConfig(t *testing.T, url string) (map[string]any, string) {
	t.Helper()
	_, body := get(t, url+"/")
	m := regexp.MustCompile(`data-app="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the page has no data-app attribute:\n%s", body)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &cfg); err != nil {
		t.Fatalf("data-app %s: %v", m[1], err)
	}
	return cfg, body
}

// TestPageDescribesTheRegisteredAggregates: the page is drawn from the
// aggregates the service registers, one known only to this test included,
// with their defaults filled in and nothing of their wiring.
func TestPageDescribesTheRegisteredAggregates(t *testing.T) {
	srv := newServer(t, Config{Title: "Test <app>", Aggregates: []Aggregate{publishers("svc.publishers.events")}})
	cfg, body := appConfig(t, srv.URL)
	if !strings.Contains(body, "<title>Test &lt;app&gt;</title>") {
		t.Errorf("the page's title is not the application's")
	}
	if cfg["title"] != "Test <app>" || cfg["stream"] != StreamPath {
		t.Errorf("title, stream = %v, %v", cfg["title"], cfg["stream"])
	}
	aggs, _ := cfg["aggregates"].([]any)
	if len(aggs) != 1 {
		t.Fatalf("aggregates = %v, want the publishers", cfg["aggregates"])
	}
	p := aggs[0].(map[string]any)
	want := map[string]any{"name": "publishers", "singular": "publisher", "title": "Publishers", "key": "id", "path": "/publishers"}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %v, want %v", k, p[k], v)
		}
	}
	forms := p["forms"].(map[string]any)
	if forms["create"] != true || forms["deleteVerb"] != "Delete" || forms["deleted"] != "deleted" || forms["updateLabel"] != "Save" {
		t.Errorf("forms = %v, want the defaults filled in", forms)
	}
	events := p["events"].([]any)
	if e := events[0].(map[string]any); e["type"] != "PublisherCreated" || e["describe"].([]any)[0] != "Founded as {name}" {
		t.Errorf("events = %v", events)
	}
	for _, k := range []string{"topic", "Topic", "decode", "Decode"} {
		if _, ok := p[k]; ok {
			t.Errorf("the page is told the aggregate's %s", k)
		}
	}
}

// TestPageWithoutAggregates serves a page that describes none.
func TestPageWithoutAggregates(t *testing.T) {
	cfg, body := appConfig(t, newServer(t, Config{}).URL)
	if aggs, ok := cfg["aggregates"].([]any); !ok || len(aggs) != 0 {
		t.Errorf("aggregates = %#v, want []", cfg["aggregates"])
	}
	if !strings.Contains(body, "<title>Service</title>") {
		t.Errorf("no default title")
	}
}

func TestHandlersRefuseAnInvalidAggregate(t *testing.T) {
	for name, aggs := range map[string][]Aggregate{
		"no name":        {{Singular: "x", Key: "id"}},
		"a name with /":  {{Name: "a/b", Singular: "x", Key: "id"}},
		"no key":         {{Name: "things", Singular: "thing"}},
		"no singular":    {{Name: "things", Key: "id"}},
		"the same twice": {publishers("a"), publishers("b")},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Handlers accepted %+v", aggs)
				}
			}()
			Handlers(Config{Aggregates: aggs})
		})
	}
}

// TestExtension: the service's own scripts come before the page's (so
// that they register before it starts), its styles are linked, its
// markup is in the page and its files are served with their hashes.
func TestExtension(t *testing.T) {
	ext := fstest.MapFS{
		"b.js":     {Data: []byte("// b\n")},
		"a.js":     {Data: []byte("// a\n")},
		"x.css":    {Data: []byte(".x { color: red; }\n")},
		"v.html":   {Data: []byte(`<template id="tpl-mine"><p>mine</p></template>`)},
		"notes.md": {Data: []byte("not linked")},
	}
	srv := newServer(t, Config{Extension: ext})
	_, body := get(t, srv.URL+"/")
	scripts := regexp.MustCompile(`<script src="(/ui/[^"?]+)\?v=([0-9a-f]{12})"`).FindAllStringSubmatch(body, -1)
	var order []string
	for _, s := range scripts {
		order = append(order, s[1])
	}
	if strings.Join(order, " ") != "/ui/ext/a.js /ui/ext/b.js /ui/app.js" {
		t.Errorf("scripts = %v, want the extension's, by name, then app.js", order)
	}
	if !strings.Contains(body, `<link rel="stylesheet" href="/ui/ext/x.css?v=`) {
		t.Error("the extension's style sheet is not linked")
	}
	if !strings.Contains(body, `<template id="tpl-mine"><p>mine</p></template>`) {
		t.Error("the extension's markup is not in the page")
	}
	for _, s := range scripts[:2] {
		resp, got := get(t, srv.URL+s[1]+"?v="+s[2])
		want, _ := fs.ReadFile(ext, strings.TrimPrefix(s[1], "/ui/ext/"))
		if resp.StatusCode != 200 || got != string(want) || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("GET %s = %d %q (%s)", s[1], resp.StatusCode, got, resp.Header.Get("Cache-Control"))
		}
	}
	if resp, _ := get(t, srv.URL+"/ui/ext/v.html"); resp.StatusCode != 404 {
		t.Errorf("GET /ui/ext/v.html = %d, want 404: it is in the page", resp.StatusCode)
	}
}

// TestStreamNamesTheAggregate: an event of an aggregate known only to
// this test reaches the page under that aggregate's name.
func TestStreamNamesTheAggregate(t *testing.T) {
	src := newFakeSource()
	feed := NewFeed(src, FeedConfig{})
	t.Cleanup(feed.Close)
	srv := newServer(t, Config{Feed: feed, Aggregates: []Aggregate{publishers("svc.publishers.events")}, KeepAlive: time.Minute})
	s := openStream(t, srv.URL+StreamPath)
	s.nextEvent() // not live yet
	run := src.next(t)
	run.ready()
	s.nextEvent() // live
	run.emit(Event{Aggregate: "publishers", Topic: "svc.publishers.events", Key: "p1", Type: "PublisherCreated", Version: 1,
		Event: json.RawMessage(`{"type":"PublisherCreated","id":"p1","name":"Penguin"}`)})
	e := s.nextEvent()
	var got Event
	if err := json.Unmarshal([]byte(e.data), &got); err != nil || e.name != "event" || got.Aggregate != "publishers" || got.Key != "p1" {
		t.Errorf("got %s %s (%v), want the publisher's event under its name", e.name, e.data, err)
	}
}

// TestGenericPageNamesNoAggregate keeps the page's own files free of any
// service's aggregates: what they show of one comes from its
// description.
func TestGenericPageNamesNoAggregate(t *testing.T) {
	names := regexp.MustCompile(`(?i)\b(authors?|books?|chapters?|catalog)\b`)
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := names.FindString(line); m != "" {
				t.Errorf("%s:%d names %q: %s", p, i+1, m, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
