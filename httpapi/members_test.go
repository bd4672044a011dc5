package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// nestedBody has objects within objects.
type nestedBody struct {
	Title    string `json:"title"`
	Chapters []struct {
		Title   string `json:"title"`
		Content string `json:"content"`
	} `json:"chapters"`
	Meta  map[string]struct{ N int } `json:"meta"`
	Extra json.RawMessage            `json:"extra"`
	Any   any                        `json:"any"`
	embedded
	Skip string `json:"-"`
	Raw  string `json:",omitempty"`
}

type embedded struct {
	Promoted string `json:"promoted"`
}

func TestDecodeStrict(t *testing.T) {
	for _, c := range []struct {
		name, body string
		// field is the member a refusal names; "" for none.
		status int
		field  string
		detail string
	}{
		{"exact names", `{"title":"T","chapters":[{"title":"1","content":"c"}],"meta":{"x":{"N":1}},"promoted":"p","Raw":"r"}`, 0, "", ""},
		{"upper-case member", `{"TITLE":"T"}`, 400, "TITLE", `did you mean "title"`},
		{"title-case member", `{"Title":"T"}`, 400, "Title", `unknown field "Title"`},
		{"Kelvin sign folds to k in encoding/json", `{"promoted":"a","\u212Aey":1}`, 400, "\u212Aey", "unknown field"},
		{"long s folds to s in encoding/json", `{"promoted":"p","\u017Fkip":1}`, 400, "\u017Fkip", "unknown field"},
		{"nested member case", `{"chapters":[{"title":"1"},{"Title":"2"}]}`, 400, "chapters[1].Title", `unknown field "chapters[1].Title"`},
		{"map value struct member case", `{"meta":{"x":{"n":1}}}`, 400, "meta.x.n", `did you mean "N"`},
		{"promoted member case", `{"Promoted":"p"}`, 400, "Promoted", `did you mean "promoted"`},
		{"skipped field", `{"Skip":"s"}`, 400, "Skip", "unknown field"},
		{"unknown member", `{"title":"T","subtitle":"S"}`, 400, "subtitle", `unknown field "subtitle"`},
		{"duplicate member", `{"title":"a","title":"b"}`, 400, "title", `duplicate member "title"`},
		{"duplicate by escape", `{"title":"a","t\u0069tle":"b"}`, 400, "title", `duplicate member "title"`},
		{"duplicate in a nested object", `{"chapters":[{"title":"1","content":"a","content":"b"}]}`, 400, "chapters[0].content", "duplicate member"},
		{"duplicate under a raw member", `{"extra":{"a":1,"b":{"c":1,"c":2}}}`, 400, "extra.b.c", "duplicate member"},
		{"duplicate under an any member", `{"any":[{"x":1,"x":1}]}`, 400, "any[0].x", "duplicate member"},
		{"names under a raw member are free", `{"extra":{"Whatever":1},"any":{"X":[{"Y":2}]}}`, 0, "", ""},
		{"same name in sibling objects", `{"chapters":[{"title":"1"},{"title":"2"}],"title":"T"}`, 0, "", ""},
		{"many members", `{"meta":{` + manyMembers(40, "") + `}}`, 0, "", ""},
		{"duplicate among many members", `{"meta":{` + manyMembers(40, "k07") + `}}`, 400, "meta.k07", "duplicate member"},
		{"invalid UTF-8", "{\"title\":\"caf\xe9\"}", 400, "", "not valid UTF-8: invalid byte at offset 13"},
		{"invalid UTF-8 in a name", "{\"ti\xfftle\":\"x\"}", 400, "", "not valid UTF-8"},
		{"UTF-8 encoded surrogate", "{\"title\":\"\xed\xa0\x80\"}", 400, "", "not valid UTF-8"},
		{"lone high surrogate", `{"title":"\ud800"}`, 400, "title", `surrogate pair without its other half in member "title"`},
		{"lone low surrogate", `{"chapters":[{"content":"a\uDC00"}]}`, 400, "chapters[0].content", "surrogate"},
		{"high surrogate then another escape", `{"title":"\ud83d\n"}`, 400, "title", "surrogate"},
		{"two high surrogates", `{"title":"\ud83d\ud83d"}`, 400, "title", "surrogate"},
		{"lone surrogate in a name", `{"any":{"\udfff":1}}`, 400, "any", "surrogate"},
		{"lone surrogate at the top", `"\ud800"`, 400, "", "in the request body"},
		{"surrogate pair", `{"title":"\ud83d\udcda and \uD83D\uDCDA"}`, 0, "", ""},
		{"other escapes", `{"title":"\"\\\/\b\f\n\r\t\u00e9\u0000"}`, 0, "", ""},
		{"U+FFFD itself", `{"title":"\ufffd` + "\uFFFD" + `"}`, 0, "", ""},
		// Malformed JSON is the decoder's to describe, as before.
		{"malformed", `{"title":"T",}`, 400, "", "malformed JSON at byte"},
		{"truncated escape", `{"title":"\u00"}`, 400, "", "malformed JSON"},
		{"trailing data", `{"title":"T"} {}`, 400, "", "unexpected data after the object"},
		{"not an object", `["title"]`, 400, "", "must be a JSON object"},
		{"deep nesting", `{"any":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, 400, "", "malformed JSON"},
		{"wrong type", `{"title":5}`, 422, "title", "must be a string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var v nestedBody
			p := decodeStrict([]byte(c.body), &v)
			checkProblem(t, c.name, p)
			if c.status == 0 {
				if p != nil {
					t.Fatalf("refused: %+v", p)
				}
				return
			}
			if p == nil || p.Status != c.status || p.Field != c.field || !strings.Contains(p.Detail, c.detail) {
				t.Fatalf("problem %+v; want status %d, field %q, detail with %q", p, c.status, c.field, c.detail)
			}
		})
	}
}

// manyMembers returns n members "k00", "k01"…, and dup again at the end.
func manyMembers(n int, dup string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + string(rune('0'+i/10)) + string(rune('0'+i%10)) + `":{}`)
	}
	if dup != "" {
		b.WriteString(`,"` + dup + `":{}`)
	}
	return b.String()
}

// TestStrictBodies sends bodies that encoding/json alone would accept,
// silently changed, to every kind of write.
func TestStrictBodies(t *testing.T) {
	api := fuzzAPI()
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"create", "POST", "/people", `{"id":"ja","name":"J"}`, 201, ""},
		{"member in capitals", "POST", "/people", `{"ID":"ja","name":"J"}`, 400, "ID"},
		// encoding/json would let "Name" overwrite name.
		{"second spelling of a member", "POST", "/people", `{"id":"ja","name":"J","Name":"B"}`, 400, "Name"},
		{"duplicate member", "POST", "/people", `{"id":"ja","name":"J","id":"jb"}`, 400, "id"},
		{"invalid UTF-8", "POST", "/people", "{\"id\":\"ja\",\"name\":\"J\xc3\"}", 400, ""},
		{"lone surrogate", "POST", "/people", `{"id":"ja","name":"J\udbff"}`, 400, "name"},
		{"update member case", "PUT", "/people/ja", `{"NAME":"J"}`, 400, "NAME"},
		{"command", "POST", "/people/commands", `{"type":"addPerson","id":"ja","name":"J"}`, 202, ""},
		{"command member case", "POST", "/people/commands", `{"type":"addPerson","Id":"ja","name":"J"}`, 400, "Id"},
		{"command type twice", "POST", "/people/commands", `{"type":"removePerson","id":"ja","type":"addPerson"}`, 400, "type"},
		{"command type case", "POST", "/people/commands", `{"TYPE":"removePerson","id":"ja"}`, 422, "type"},
		{"command member duplicate", "POST", "/people/commands", `{"type":"removePerson","id":"ja","id":"ja"}`, 400, "id"},
		{"command invalid UTF-8", "POST", "/people/commands", "{\"type\":\"renamePerson\",\"id\":\"ja\",\"name\":\"\x80\"}", 400, ""},
		{"control character in a name", "POST", "/people", `{"id":"ja","name":"J\u0000"}`, 422, "name"},
		{"bidi override in a name", "POST", "/people", `{"id":"ja","name":"J\u202e"}`, 422, "name"},
	} {
		r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		if rec.Code != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, rec.Code, c.status, rec.Body.Bytes())
			continue
		}
		if c.status < 400 {
			continue
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Field != c.field || p.Detail == "" {
			t.Errorf("%s: problem %s (%v), want field %q", c.name, rec.Body.Bytes(), err, c.field)
		}
	}
}

func TestReadBody(t *testing.T) {
	valid := `{"code":"ja","firstName":"J","lastName":"A"}`
	// A declared length over the limit is refused before reading.
	r := httptest.NewRequest(http.MethodPost, "/people", strings.NewReader(valid))
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = MaxBodyBytes + 1
	var b nameBody
	if p := decodeBody(httptest.NewRecorder(), r, &b); p == nil || p.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared length over the limit: %+v", p)
	}
	if n, _ := r.Body.Read(make([]byte, 1)); n != 1 {
		t.Fatal("the body was read")
	}
	// A body the reader fails on is a 400 naming the failure.
	r = httptest.NewRequest(http.MethodPost, "/people", failingReader{})
	r.Header.Set("Content-Type", "application/json")
	if p := decodeBody(httptest.NewRecorder(), r, &b); p == nil || p.Status != http.StatusBadRequest || !strings.Contains(p.Detail, "could not be read") {
		t.Fatalf("failing body: %+v", p)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
