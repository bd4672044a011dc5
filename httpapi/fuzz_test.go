package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
)

// checkProblem fails unless p is nil or a well-formed client-error problem
// of decodeBody, and unless it is written as application/problem+json.
func checkProblem(t *testing.T, what string, p *Problem) {
	t.Helper()
	if p == nil {
		return
	}
	switch p.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
	case http.StatusUnprocessableEntity:
		if p.Field == "" {
			t.Fatalf("%s: 422 without a field: %+v", what, p)
		}
	default:
		t.Fatalf("%s: status %d: %+v", what, p.Status, p)
	}
	if p.Detail == "" {
		t.Fatalf("%s: problem without detail: %+v", what, p)
	}
	if len(p.Detail) > maxDetail || len(p.Field) > maxEcho+len("…") {
		t.Fatalf("%s: problem echoes too much: %d bytes of detail, field %q", what, len(p.Detail), p.Field)
	}
	rec := httptest.NewRecorder()
	writeProblem(rec, p)
	if rec.Code != p.Status || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s: written as %d %q", what, rec.Code, rec.Header().Get("Content-Type"))
	}
	var back Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &back); err != nil || back.Status != p.Status || back.Title == "" || back.Type == "" {
		t.Fatalf("%s: written problem %q does not read back (%v)", what, rec.Body.Bytes(), err)
	}
}

// typed has members of several JSON kinds, to reach every branch of
// jsonProblem and jsonKind.
type typed struct {
	S  *string            `json:"s"`
	N  int64              `json:"n"`
	U  uint8              `json:"u"`
	F  float64            `json:"f"`
	B  bool               `json:"b"`
	L  []string           `json:"l"`
	M  map[string]int     `json:"m"`
	O  *struct{ X int }   `json:"o"`
	R  json.RawMessage    `json:"r"`
	OS selfDecoding       `json:"os"`
	A  [2]int             `json:"a"`
	I  any                `json:"i"`
	MM map[int]string     `json:"mm"`
	P  **map[string][]int `json:"p"`
}

// selfDecoding decodes itself (null or a string), as a target the member
// walk leaves to its UnmarshalJSON.
type selfDecoding struct {
	Set   bool
	Value *string
}

func (o *selfDecoding) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// nameBody is a body of three optional members.
type nameBody struct {
	Code      *string `json:"code"`
	FirstName *string `json:"firstName"`
	LastName  *string `json:"lastName"`
}

func FuzzDecodeBody(f *testing.F) {
	for _, s := range []struct {
		body, ct string
	}{
		{`{"code":"jane-austen","firstName":"Jane","lastName":"Austen"}`, "application/json"},
		{`{"code":"jane-austen","firstName":"Jane","lastName":"Austen"}`, "application/json; charset=utf-8"},
		{`{"code":"jane-austen","firstName":"Jane","lastName":"Austen"}`, "application/problem+json"},
		{`{"code":"jane-austen","firstName":"Jane","lastName":"Austen"}`, "text/plain"},
		{`{"code":"jane-austen","firstName":"Jane","lastName":"Austen"}`, ""},
		{`{"code":"jane-austen","firstName":"Jane","lastName":"Austen"}`, "application/json; ="},

		{`{"code":"jane-austen"`, "application/json"},
		{`{"code":"a"} x`, "application/json"},
		{`{"code":"a"}}`, "application/json"},
		{`{"code":"a"}{"code":"b"}`, "application/json"},
		{`{"age":3}`, "application/json"},
		{`{"firstName":5}`, "application/json"},
		{`{"n":"x","s":1,"l":{},"m":[],"o":1,"u":300,"b":"t","a":[1,2,3],"mm":{"x":"y"},"p":{"a":"b"}}`, "application/json"},
		{`{"os":5,"f":1e400,"n":1.5}`, "application/json"},
		{`[]`, "application/json"},
		{`"x"`, "application/json"},
		{`null`, "application/json"},
		{`0`, "application/json"},
		{``, "application/json"},
		{" \t\n", "application/json"},
		{"{\"code\":\"\xff\xfe\"}", "application/json"},
		{`{"code":"\ud800"}`, "application/json"},
		{`{"type":"CreateAuthor","code":"a","firstName":"b","lastName":"c"}`, "application/json"},
		{`{"a":{"b":{"c":[[[[[[[[[[]]]]]]]]]]}}}`, "application/json"},
		{`{"CODE":"a","firstName":"b","lastName":"c"}`, "application/json"},
		{`{"code":"a","code":"b"}`, "application/json"},
		{`{"a":{"x":1,"\u0078":2}}`, "application/json"},
		{`{"code":"\ud83d\udcda","o":{"X":1,"x":2}}`, "application/json"},
		{`{"l":["\udc00"]}`, "application/json"},
		{"{\"code\":\"\uFFFD\\ud800\"}", "application/json"},
	} {
		f.Add([]byte(s.body), s.ct)
	}
	// Bodies over MaxBodyBytes are left to TestDecodeBodyTooLarge: a
	// megabyte per run would make the fuzzer crawl.
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		decode := func(v any) *Problem {
			r := httptest.NewRequest(http.MethodPost, "/people", bytes.NewReader(body))
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			return decodeBody(httptest.NewRecorder(), r, v)
		}
		var ab nameBody
		pa := decode(&ab)
		checkProblem(t, "nameBody", pa)
		var raw map[string]json.RawMessage
		pr := decode(&raw)
		checkProblem(t, "map", pr)
		var ty typed
		checkProblem(t, "typed", decode(&ty))

		// The content type verdict does not depend on the target.
		if (pa != nil && pa.Status == http.StatusUnsupportedMediaType) != (pr != nil && pr.Status == http.StatusUnsupportedMediaType) {
			t.Fatalf("nameBody: %+v, map: %+v", pa, pr)
		}
		// Any body accepted is valid JSON in valid UTF-8, without
		// duplicate members or lone surrogate escapes, and such a JSON
		// object under the limit with the right content type is
		// accepted as a map. The oracle for both is encoding/json's
		// own tokenizer, not the walk decodeBody does.
		dups, replaced := tokenOracle(body)
		// A U+FFFD in the input, raw or escaped, would hide a lone
		// surrogate from the oracle.
		hasFFFD := bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
		if pr == nil && (!json.Valid(body) || !utf8.Valid(body) || dups || (replaced && !hasFFFD)) {
			t.Fatalf("%q accepted: valid JSON %v, UTF-8 %v, duplicates %v, U+FFFD from a surrogate %v", body, json.Valid(body), utf8.Valid(body), dups, replaced && !hasFFFD)
		}
		trimmed := bytes.TrimSpace(body)
		if ct == "application/json" && len(body) <= MaxBodyBytes && json.Valid(body) && len(trimmed) > 0 && trimmed[0] == '{' &&
			utf8.Valid(body) && !dups && !replaced && pr != nil {
			t.Fatalf("JSON object %q refused: %+v", body, pr)
		}
		// A nameBody accepted has only its members, spelt exactly.
		if pa == nil {
			var members map[string]json.RawMessage
			_ = json.Unmarshal(body, &members)
			for m := range members {
				if m != "code" && m != "firstName" && m != "lastName" {
					t.Fatalf("%q accepted as a nameBody with member %q", body, m)
				}
			}
		}

		// jsonProblem on whatever the standard decoder says.
		for _, v := range []any{&ab, &raw, &ty, new([]int), new(string)} {
			if err := json.Unmarshal(body, v); err != nil {
				p := jsonProblem(err)
				if p.Status != http.StatusBadRequest && p.Status != http.StatusUnprocessableEntity {
					t.Fatalf("jsonProblem(%v) = %+v", err, p)
				}
				checkProblem(t, "jsonProblem", p)
			}
		}
	})
}

// maxDetail bounds a problem's detail: fixed text and short excerpts of
// the input (quoted), never the input whole.
const maxDetail = 1024

// tokenOracle walks body with encoding/json's tokenizer and reports whether
// an object has a member twice and whether a decoded string (member name
// or value) holds U+FFFD. It gives up quietly on malformed JSON.
func tokenOracle(body []byte) (dups, replaced bool) {
	type frame struct {
		object, wantKey bool
		seen            map[string]bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return dups, replaced
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && strings.ContainsRune(s, utf8.RuneError) {
			replaced = true
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, &frame{object: tok == json.Delim('{'), wantKey: true, seen: map[string]bool{}})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				stack[len(stack)-1].wantKey = true
			}
			continue
		}
		if top != nil && top.object && top.wantKey {
			k := tok.(string)
			dups = dups || top.seen[k]
			top.seen[k] = true
			top.wantKey = false
			continue
		}
		if top != nil {
			top.wantKey = true
		}
	}
}

func TestDecodeBodyTooLarge(t *testing.T) {
	valid := `{"code":"jane-austen","firstName":"Jane","lastName":"Austen"}`
	for _, c := range []struct {
		name, body string
		status     int
	}{
		{"whitespace after the object", valid + strings.Repeat(" ", MaxBodyBytes), http.StatusRequestEntityTooLarge},
		{"huge string", `{"code":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge},
		{"huge unknown member", `{"x":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge},
		{"huge wrong type", `{"firstName":[` + strings.Repeat("1,", MaxBodyBytes/2) + `1]}`, http.StatusRequestEntityTooLarge},
		{"deep nesting", `{"x":` + strings.Repeat("[", MaxBodyBytes) + `}`, 0},
		{"exactly the limit", valid + strings.Repeat(" ", MaxBodyBytes-len(valid)), http.StatusOK},
		{"one byte over", valid + strings.Repeat(" ", MaxBodyBytes-len(valid)+1), http.StatusRequestEntityTooLarge},
		// The body is read whole before it is decoded, so the size
		// verdict comes first, whatever the body holds.
		{"garbage", strings.Repeat("x", 2*MaxBodyBytes), http.StatusRequestEntityTooLarge},
		{"wrong content type", strings.Repeat(" ", 2*MaxBodyBytes), http.StatusUnsupportedMediaType},
	} {
		for _, target := range []any{new(nameBody), new(map[string]json.RawMessage)} {
			r := httptest.NewRequest(http.MethodPost, "/people", strings.NewReader(c.body))
			r.Header.Set("Content-Type", "application/json")
			if c.status == http.StatusUnsupportedMediaType {
				r.Header.Set("Content-Type", "text/plain")
			}
			p := decodeBody(httptest.NewRecorder(), r, target)
			checkProblem(t, c.name, p)
			switch {
			case c.status == 0 && p != nil && p.Status != http.StatusBadRequest && p.Status != http.StatusRequestEntityTooLarge && p.Status != http.StatusUnprocessableEntity:
				t.Errorf("%s into %T: %+v", c.name, target, p)
			case c.status == http.StatusOK && p != nil:
				t.Errorf("%s into %T: %+v, want it accepted", c.name, target, p)
			case c.status != 0 && c.status != http.StatusOK && (p == nil || p.Status != c.status):
				t.Errorf("%s into %T: %+v, want status %d", c.name, target, p, c.status)
			}
		}
	}
}

func FuzzCursor(f *testing.F) {
	for _, s := range []struct{ key, cursor, limit string }{
		{"jane-austen", "amFuZS1hdXN0ZW4", "2"},
		{"", "", ""},
		{"a", "YQ==", "0"},
		{"x\x00y", "!!!", "5000"},
		{"ünïcødé", "YR", "x"},
		{"\xff", "_-_-", "-1"},
		{"s/../m/0001", "%zz", "1000"},
		{"k", "a b", "99999999999999999999"},
		{"k", "AAAA", " 1"},
		{"k", "YWJj\n", "+5"},
	} {
		f.Add(s.key, s.cursor, s.limit)
	}
	f.Fuzz(func(t *testing.T, key, cursor, limit string) {
		// Every key survives a round trip through its cursor, which is
		// safe in a URL as it is.
		c := encodeCursor(key)
		if back, err := decodeCursor(c); err != nil || back != key {
			t.Fatalf("cursor %q of %q decodes to %q, %v", c, key, back, err)
		}
		if url.QueryEscape(c) != c {
			t.Fatalf("cursor %q needs escaping", c)
		}
		dc, derr := decodeCursor(cursor)

		q := url.Values{}
		if limit != "" {
			q.Set("limit", limit)
		}
		if cursor != "" {
			q.Set("after", cursor)
		}
		r := httptest.NewRequest(http.MethodGet, "/people?"+q.Encode(), nil)
		n, after, p := pageParams(r)
		if p != nil {
			if p.Status != http.StatusBadRequest || (p.Field != "limit" && p.Field != "after") || p.Detail == "" {
				t.Fatalf("pageParams(limit=%q, after=%q): %+v", limit, cursor, p)
			}
			if p.Field == "after" && derr == nil {
				t.Fatalf("cursor %q decodes but was refused", cursor)
			}
			checkProblem(t, "pageParams", p)
			return
		}
		if n < 1 || n > MaxLimit || (limit == "" && n != 100) {
			t.Fatalf("limit=%q gave %d", limit, n)
		}
		if cursor != "" && (derr != nil || after != dc) {
			t.Fatalf("after=%q gave %q (decodes to %q, %v)", cursor, after, dc, derr)
		}
		if cursor == "" && after != "" {
			t.Fatalf("no cursor gave after %q", after)
		}
	})
}

// fakeWriter runs commands through the aggregate's decide on the zero
// state, with no Kafka, and remembers their outcomes.
type fakeWriter[S, C, E any] struct {
	agg    es.Aggregate[S, C, E]
	events es.Codec[E]
	mu     sync.Mutex
	out    map[string]*eskafka.Result[S, E]
}

func (w *fakeWriter[S, C, E]) Send(_ context.Context, cmd C, opt eskafka.SendOptions) (eskafka.Sent, error) {
	var zero S
	next, events, rej := w.agg.Handle(zero, cmd, opt.ExpectedVersion)
	res := &eskafka.Result[S, E]{Outcome: &eskafka.Outcome{MsgID: opt.MsgID, Key: w.agg.Key(cmd), Version: w.agg.Version(next)}}
	if rej != nil {
		res.Status, res.Rejection = eskafka.StatusRejected, rej
	} else {
		res.Status, res.State, res.Exists, res.Events = eskafka.StatusAccepted, next, w.agg.Exists(next), events
		for _, e := range events {
			b, typ, err := w.events.Encode(e)
			if err != nil {
				return eskafka.Sent{}, err
			}
			res.Outcome.Events = append(res.Outcome.Events, eskafka.EncodedEvent{Type: typ, Data: b})
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.out[opt.MsgID]; !ok || !opt.Idempotent {
		w.out[opt.MsgID] = res
	}
	return eskafka.Sent{MsgID: opt.MsgID}, nil
}

func (w *fakeWriter[S, C, E]) Await(_ context.Context, sent eskafka.Sent) (*eskafka.Result[S, E], error) {
	res, ok, _ := w.Lookup(sent.MsgID)
	if !ok {
		return nil, context.DeadlineExceeded
	}
	return res, nil
}

func (w *fakeWriter[S, C, E]) Lookup(msgID string) (*eskafka.Result[S, E], bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	res, ok := w.out[msgID]
	return res, ok, nil
}

// emptyReader has no aggregates.
type emptyReader[S any] struct{}

func (emptyReader[S]) Get(string) (S, error) {
	var zero S
	return zero, eskafka.ErrNotFound
}

func (emptyReader[S]) List(string, int) ([]S, []string, bool, error) { return nil, nil, false, nil }

type readyHealth struct{}

func (readyHealth) Readiness() error { return nil }

// fuzzAPI is the whole API over fakes: commands are decided against empty
// states, reads find nothing.
func fuzzAPI() http.Handler { return New(testConfig()) }

// FuzzAPI sends arbitrary requests to the whole API (over fakes, so that
// any 5xx is the API's own): none panics or gets a 5xx, and every error is
// a problem document with its status.
func FuzzAPI(f *testing.F) {
	const uuid = "0b8a6c2e-5d0f-4a4e-9b7e-3f2c1d0e9a8b"
	for _, s := range []struct{ method, path, ct, body, ifMatch, idem string }{
		{"POST", "/people", "application/json", `{"id":"ada-lovelace","name":"Ada"}`, "", ""},
		{"POST", "/people", "application/json", `{"id":"ada-lovelace","name":"Ada"}`, `"0"`, "k1"},
		{"POST", "/people", "application/json", `{"id":"Ada","name":" "}`, "", ""},
		{"PUT", "/people/ada-lovelace", "application/json", `{"name":"A"}`, `"1"`, ""},
		{"PUT", "/people/ada-lovelace", "application/json", `{"id":"x","name":"A"}`, `W/"x"`, ""},
		{"DELETE", "/people/ada-lovelace", "", "", `*`, "k2"},
		{"DELETE", "/people/ada-lovelace/nicknames/1", "", "", "", ""},
		{"DELETE", "/people/ada-lovelace/nicknames/x", "", "", "", ""},
		{"GET", "/people/ada-lovelace", "", "", "", ""},
		{"GET", "/people/ada-lovelace/history", "", "", "", ""},
		{"GET", "/people/ada-lovelace?position=1", "", "", "", ""},
		{"GET", "/people?limit=2&after=YQ", "", "", "", ""},
		{"POST", "/people/commands", "application/json", `{"type":"addPerson","id":"a","name":"b"}`, "", "k"},
		{"POST", "/people/commands", "application/json", `{"type":"removePerson"}`, "", ""},
		{"POST", "/people/commands", "application/json", `{"type":"dropNickname","id":"a","index":1}`, "", ""},
		{"GET", "/people/commands/" + uuid + "?wait=1ms", "", "", "", ""},
		{"GET", "/people/Not%20An%20Id", "", "", "", ""},
		{"PATCH", "/people", "", "", "", ""},
		{"GET", "/healthz", "", "", "", ""},
		{"GET", "/readyz", "", "", "", ""},
		{"GET", "/people/../people", "", "", "", ""},
		{"POST", "/people", "application/json", `{"id":"ada","name":"A","Name":"B"}`, "", ""},
		{"POST", "/people/commands", "application/json", `{"type":"renamePerson","id":"ada","name":"a","name":"b"}`, "", ""},
		{"POST", "/people", "application/json", `{"id":"ada","name":"Ada\u202e"}`, "", ""},
		{"PUT", "/people/ada", "application/json", `{"name":"A"}`, `"` + strings.Repeat("9", 100) + `"`, ""},
	} {
		f.Add(s.method, s.path, s.ct, []byte(s.body), s.ifMatch, s.idem)
	}
	api := fuzzAPI()
	f.Fuzz(func(t *testing.T, method, path, ct string, body []byte, ifMatch, idem string) {
		r, err := http.NewRequest(method, "http://catalog.test/"+strings.TrimPrefix(path, "/"), bytes.NewReader(body))
		if err != nil {
			return // not a request a server would hand to the API
		}
		set := func(k, v string) {
			if v != "" && utf8.ValidString(v) && !strings.ContainsAny(v, "\r\n\x00") {
				r.Header.Set(k, v)
			}
		}
		set("Content-Type", ct)
		set("If-Match", ifMatch)
		set("Idempotency-Key", idem)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r.WithContext(ctx))
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, r.URL, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
				t.Fatalf("%s %s: %d with Content-Type %q", method, r.URL, rec.Code, got)
			}
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Detail == "" {
				t.Fatalf("%s %s: %d with problem %s (%v)", method, r.URL, rec.Code, rec.Body.Bytes(), err)
			}
			if rec.Code == http.StatusUnprocessableEntity && p.Field == "" {
				t.Fatalf("%s %s: 422 without a field: %s", method, r.URL, rec.Body.Bytes())
			}
			if len(p.Detail) > maxDetail || len(p.Field) > maxEcho+len("…") {
				t.Fatalf("%s %s: %d echoes too much: %s", method, r.URL, rec.Code, rec.Body.Bytes())
			}
		}
	})
}
