package avro_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/internal/avro"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/es"
	"github.com/bookscatalog/catalog/internal/schemaregistry"
)

// codecs are the codecs of both aggregates, as the runtime builds them.
type codecs struct {
	authorState    *avro.Value[author.State]
	authorCommands *avro.Union[author.Command]
	authorEvents   *avro.Union[author.Event]
	bookState      *avro.Value[book.State]
	bookCommands   *avro.Union[book.Command]
	bookEvents     *avro.Union[book.Event]
}

// must returns v, panicking on err (a test set-up failure).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newCodecs(t testing.TB, reg avro.Registry) *codecs {
	t.Helper()
	c := &codecs{
		authorState: must(avro.NewValue[author.State](reg, "catalog.author")),
		authorCommands: must(avro.NewUnion[author.Command](reg, "catalog.author",
			avro.Of[author.CreateAuthor](), avro.Of[author.UpdateAuthor](), avro.Of[author.DeleteAuthor]())),
		authorEvents: must(avro.NewUnion[author.Event](reg, "catalog.author",
			avro.Of[author.AuthorCreated](), avro.Of[author.AuthorUpdated](), avro.Of[author.AuthorDeleted]())),
		bookState: must(avro.NewValue[book.State](reg, "catalog.book")),
		bookCommands: must(avro.NewUnion[book.Command](reg, "catalog.book",
			avro.Of[book.CreateBook](), avro.Of[book.UpdateBook](), avro.Of[book.SetBookAuthor](),
			avro.Of[book.AddChapter](), avro.Of[book.RemoveChapter](), avro.Of[book.RemoveBook]())),
		bookEvents: must(avro.NewUnion[book.Event](reg, "catalog.book",
			avro.Of[book.BookCreated](), avro.Of[book.BookUpdated](), avro.Of[book.BookAuthorSet](),
			avro.Of[book.ChapterAdded](), avro.Of[book.ChapterRemoved](), avro.Of[book.BookRemoved]())),
	}
	return c
}

func (c *codecs) all() []avro.Registrant {
	return []avro.Registrant{c.authorState, c.authorCommands, c.authorEvents, c.bookState, c.bookCommands, c.bookEvents}
}

func registered(t testing.TB) (*codecs, *schemaregistry.Memory) {
	t.Helper()
	reg := schemaregistry.NewMemory()
	c := newCodecs(t, reg)
	if err := avro.Register(context.Background(), c.all()...); err != nil {
		t.Fatal(err)
	}
	return c, reg
}

// The codecs are es.Codecs.
var (
	_ es.Codec[author.State]   = (*avro.Value[author.State])(nil)
	_ es.Codec[author.Command] = (*avro.Union[author.Command])(nil)
	_ es.Codec[author.Event]   = (*avro.Union[author.Event])(nil)
)

func roundTrip[T any](t *testing.T, c es.Codec[T], v T, wantType string) {
	t.Helper()
	b, typ, err := c.Encode(v)
	if err != nil {
		t.Fatalf("encode %#v: %v", v, err)
	}
	if typ != wantType {
		t.Errorf("encode %T: type name %q, want %q", v, typ, wantType)
	}
	if len(b) < avro.HeaderLen || b[0] != 0xC3 || b[1] != 0x01 {
		t.Fatalf("encode %T: % x is not a single-object frame", v, b)
	}
	got, err := c.Decode(b)
	if err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("round trip of %T:\n got %#v\nwant %#v", v, got, v)
	}
}

func TestRoundTripAuthor(t *testing.T) {
	c, _ := registered(t)
	roundTrip(t, c.authorState, author.State{Code: "jane-austen", FirstName: "Jane", LastName: "Austen", Version: 3}, "State")
	roundTrip(t, c.authorState, author.State{}, "State")
	roundTrip[author.Command](t, c.authorCommands, author.CreateAuthor{Code: "a", FirstName: "Ä", LastName: "日本"}, "CreateAuthor")
	roundTrip[author.Command](t, c.authorCommands, author.UpdateAuthor{Code: "a", FirstName: "B", LastName: "C"}, "UpdateAuthor")
	roundTrip[author.Command](t, c.authorCommands, author.DeleteAuthor{Code: "a"}, "DeleteAuthor")
	roundTrip[author.Event](t, c.authorEvents, author.AuthorCreated{Code: "a", FirstName: "B", LastName: "C"}, "AuthorCreated")
	roundTrip[author.Event](t, c.authorEvents, author.AuthorUpdated{Code: "a", FirstName: "B", LastName: "C"}, "AuthorUpdated")
	roundTrip[author.Event](t, c.authorEvents, author.AuthorDeleted{Code: "a"}, "AuthorDeleted")
}

func TestRoundTripBook(t *testing.T) {
	c, _ := registered(t)
	id := "3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f"
	roundTrip(t, c.bookState, book.State{
		ID: id, Title: "Emma", AuthorCode: "jane-austen",
		Chapters:      []book.Chapter{{ID: 1, Title: "One", Content: "…"}, {ID: 3, Title: "Three", Content: ""}},
		NextChapterID: 4, Version: 7,
	}, "State")
	roundTrip(t, c.bookState, book.State{ID: id, Title: "Empty", Chapters: []book.Chapter{}, NextChapterID: 1, Version: 1}, "State")
	roundTrip[book.Command](t, c.bookCommands, book.CreateBook{ID: id, Title: "T", AuthorCode: "x"}, "CreateBook")
	roundTrip[book.Command](t, c.bookCommands, book.UpdateBook{ID: id, Title: "T"}, "UpdateBook")
	roundTrip[book.Command](t, c.bookCommands, book.SetBookAuthor{ID: id}, "SetBookAuthor")
	roundTrip[book.Command](t, c.bookCommands, book.AddChapter{ID: id, Title: "T", Content: strings.Repeat("x", 100_000)}, "AddChapter")
	roundTrip[book.Command](t, c.bookCommands, book.RemoveChapter{ID: id, ChapterID: 1 << 40}, "RemoveChapter")
	roundTrip[book.Command](t, c.bookCommands, book.RemoveBook{ID: id}, "RemoveBook")
	roundTrip[book.Event](t, c.bookEvents, book.BookCreated{ID: id, Title: "T"}, "BookCreated")
	roundTrip[book.Event](t, c.bookEvents, book.BookUpdated{ID: id, Title: "T"}, "BookUpdated")
	roundTrip[book.Event](t, c.bookEvents, book.BookAuthorSet{ID: id, AuthorCode: "a"}, "BookAuthorSet")
	roundTrip[book.Event](t, c.bookEvents, book.ChapterAdded{ID: id, ChapterID: 2, Title: "T", Content: "C"}, "ChapterAdded")
	roundTrip[book.Event](t, c.bookEvents, book.ChapterRemoved{ID: id, ChapterID: -1}, "ChapterRemoved")
	roundTrip[book.Event](t, c.bookEvents, book.BookRemoved{ID: id}, "BookRemoved")
}

// Avro has no null for arrays, maps and bytes: nil and empty are the same on
// the wire. Empty arrays and maps read back as empty, non-nil values (so a
// book without chapters renders as "chapters": []), empty bytes as nil (so
// "no bytes" tests like b == nil keep working).
func TestNilAndEmpty(t *testing.T) {
	c, _ := registered(t)
	b, _, err := c.bookState.Encode(book.State{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.bookState.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Chapters == nil || len(got.Chapters) != 0 {
		t.Errorf("chapters = %#v, want empty", got.Chapters)
	}
	type withBytes struct {
		Data  []byte            `avro:"data"`
		More  *[]byte           `avro:"more"`
		Tags  map[string]string `avro:"tags"`
		Items []string          `avro:"items"`
	}
	v := must(avro.NewValue[withBytes](schemaregistry.NewMemory(), "test"))
	if err := avro.Register(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	for _, in := range []withBytes{{}, {Data: []byte{}, Tags: map[string]string{}, Items: []string{}}} {
		b, _, err := v.Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := v.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if out.Data != nil || out.More != nil || out.Tags == nil || out.Items == nil {
			t.Errorf("%#v read back as %#v", in, out)
		}
	}
	empty := []byte{}
	b, _, _ = v.Encode(withBytes{More: &empty, Data: []byte{1}})
	out, err := v.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.More == nil || *out.More != nil || len(out.Data) != 1 {
		t.Errorf("read back %#v", out)
	}
}

func TestSchemaNamesAndJSON(t *testing.T) {
	c, _ := registered(t)
	want := map[string]string{
		"catalog.author.State":         `{"fields":[{"name":"code","type":"string"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"},{"name":"version","type":"long"}],"name":"State","namespace":"catalog.author","type":"record"}`,
		"catalog.author.AuthorCreated": `{"fields":[{"name":"code","type":"string"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"}],"name":"AuthorCreated","namespace":"catalog.author","type":"record"}`,
		"catalog.book.State":           `{"fields":[{"name":"id","type":"string"},{"name":"title","type":"string"},{"name":"authorCode","type":"string"},{"name":"chapters","type":{"items":{"fields":[{"name":"id","type":"long"},{"name":"title","type":"string"},{"name":"content","type":"string"}],"name":"Chapter","type":"record"},"type":"array"}},{"name":"nextChapterId","type":"long"},{"name":"version","type":"long"}],"name":"State","namespace":"catalog.book","type":"record"}`,
	}
	got := map[string]string{}
	for _, r := range c.all() {
		for _, s := range r.Schemas() {
			got[s.Name()] = s.JSON()
		}
	}
	if len(got) != 20 {
		t.Errorf("%d schemas, want 20: %v", len(got), got)
	}
	for name, js := range want {
		if got[name] != js {
			t.Errorf("schema %s:\n got %s\nwant %s", name, got[name], js)
		}
	}
}

func TestEncodeBeforeRegister(t *testing.T) {
	reg := schemaregistry.NewMemory()
	c := newCodecs(t, reg)
	_, _, err := c.authorEvents.Encode(author.AuthorDeleted{Code: "a"})
	if !errors.Is(err, avro.ErrNotRegistered) {
		t.Fatalf("err = %v, want ErrNotRegistered", err)
	}
	if err := avro.Register(context.Background(), c.authorEvents); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.authorEvents.Encode(author.AuthorDeleted{Code: "a"}); err != nil {
		t.Fatal(err)
	}
	all, _ := reg.All(context.Background())
	if len(all) != 3 {
		t.Errorf("registry holds %d schemas, want the 3 author events", len(all))
	}
	// Registering again is idempotent.
	if err := avro.Register(context.Background(), c.all()...); err != nil {
		t.Fatal(err)
	}
	if err := avro.Register(context.Background(), newCodecs(t, reg).all()...); err != nil {
		t.Fatal(err)
	}
	all, _ = reg.All(context.Background())
	if len(all) != 20 {
		t.Errorf("registry holds %d schemas, want 20", len(all))
	}
}

func TestEncodeErrors(t *testing.T) {
	c, _ := registered(t)
	if _, _, err := c.authorEvents.Encode(nil); err == nil {
		t.Error("encoding nil: no error")
	}
	type other struct{ author.Event }
	if _, _, err := c.authorEvents.Encode(other{}); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Errorf("encoding a non-member: %v", err)
	}
}

func TestDecodeWrongType(t *testing.T) {
	c, _ := registered(t)
	b, _, err := c.authorEvents.Encode(author.AuthorCreated{Code: "a", FirstName: "B", LastName: "C"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.authorState.Decode(b)
	if !errors.Is(err, avro.ErrWrongType) || !strings.Contains(err.Error(), "catalog.author.AuthorCreated") {
		t.Errorf("decoding an event as a state: %v", err)
	}
	_, err = c.bookEvents.Decode(b)
	if !errors.Is(err, avro.ErrWrongType) {
		t.Errorf("decoding an author event as a book event: %v", err)
	}
	// A command is not an event, although the fields are the same.
	cmd, _, _ := c.authorCommands.Encode(author.CreateAuthor{Code: "a", FirstName: "B", LastName: "C"})
	if _, err := c.authorEvents.Decode(cmd); !errors.Is(err, avro.ErrWrongType) {
		t.Errorf("decoding a command as an event: %v", err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	c, _ := registered(t)
	good, _, err := c.authorEvents.Encode(author.AuthorCreated{Code: "abc", FirstName: "B", LastName: "C"})
	if err != nil {
		t.Fatal(err)
	}
	unknownFP := append(avro.AppendFrameHeader(nil, 0x0123456789abcdef), 0)
	cases := []struct {
		name string
		b    []byte
		want error
		text string
	}{
		{"nil", nil, avro.ErrNotAvro, "0 bytes"},
		{"short", good[:9], avro.ErrNotAvro, "9 bytes"},
		{"bad magic", append([]byte{0xC3, 0x02}, good[2:]...), avro.ErrNotAvro, "0xc3 0x02"},
		{"json", []byte(`{"type":"AuthorCreated","code":"a"}`), avro.ErrNotAvro, "want 0xc3 0x01"},
		{"unknown fingerprint", unknownFP, avro.ErrUnknownSchema, "0123456789abcdef"},
		{"truncated body", good[:len(good)-1], avro.ErrMalformedBody, "written with schema"},
		{"header only", good[:avro.HeaderLen], avro.ErrMalformedBody, ""},
		{"trailing bytes", append(append([]byte{}, good...), 0, 0), avro.ErrMalformedBody, "2 bytes after the record"},
		{"negative length", append(append([]byte{}, good[:avro.HeaderLen]...), 0x01), avro.ErrMalformedBody, ""},
		{"huge length", append(append([]byte{}, good[:avro.HeaderLen]...), 0xfe, 0xff, 0xff, 0xff, 0x0f), avro.ErrMalformedBody, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.authorEvents.Decode(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err = %q, want it to mention %q", err, tc.text)
			}
			if errors.Is(err, avro.ErrRegistryUnavailable) {
				t.Errorf("err = %v is marked transient", err)
			}
		})
	}
}

// Lengths and counts are checked against the bytes there are: a frame of a
// few bytes claiming a huge array fails fast, without allocating it.
func TestDecodeHugeCounts(t *testing.T) {
	c, _ := registered(t)
	header := avro.AppendFrameHeader(nil, c.bookState.Schema().Fingerprint())
	for name, chapters := range map[string][]byte{
		"count 2^40":                 {0x80, 0x80, 0x80, 0x80, 0x80, 0x40},
		"negative count, huge size":  {0x01, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"max varint":                 {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"overlong varint":            {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"count 1, then nothing":      {0x02},
		"count 1, chapter truncated": {0x02, 0x02},
	} {
		t.Run(name, func(t *testing.T) {
			frame := append(append(append([]byte{}, header...), 0, 0, 0), chapters...)
			start := time.Now()
			_, err := c.bookState.Decode(frame)
			if !errors.Is(err, avro.ErrMalformedBody) {
				t.Errorf("err = %v", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// unavailable is a registry that cannot be reached.
type unavailable struct{ avro.Registry }

func (unavailable) Lookup(ctx context.Context, fp uint64) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

func TestDecodeRegistryUnavailable(t *testing.T) {
	c, reg := registered(t)
	// An older writer's schema, not known to the reader's process.
	old := `{"type":"record","name":"AuthorDeleted","namespace":"catalog.author","fields":[{"name":"code","type":"string"},{"name":"reason","type":"string"}]}`
	fp := must(reg.Register(context.Background(), old))
	frame := append(avro.AppendFrameHeader(nil, fp), 2, 'a', 2, 'b')

	u := must(avro.NewUnion[author.Event](unavailable{reg}, "catalog.author", avro.Of[author.AuthorDeleted]()))
	u.SetLookupTimeout(20 * time.Millisecond)
	start := time.Now()
	_, err := u.Decode(frame)
	if !errors.Is(err, avro.ErrRegistryUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrRegistryUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("decode took %v", d)
	}
	// With the registry, the same frame decodes (the failure was not cached).
	got, err := c.authorEvents.Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if got != (author.AuthorDeleted{Code: "a"}) {
		t.Errorf("got %#v", got)
	}
}

// Decoding a writer's schema looks it up once, then uses the cache.
func TestLookupCached(t *testing.T) {
	c, reg := registered(t)
	old := `{"type":"record","name":"AuthorDeleted","namespace":"catalog.author","fields":[{"name":"code","type":"string"},{"name":"when","type":"long","default":0}]}`
	fp := must(reg.Register(context.Background(), old))
	frame := append(avro.AppendFrameHeader(nil, fp), 2, 'a', 4)
	before := reg.Lookups()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := c.authorEvents.Decode(frame); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := reg.Lookups() - before; n < 1 || n > 8 {
		t.Errorf("%d look-ups for 800 decodes of one fingerprint", n)
	}
	// Own frames need no look-up at all.
	before = reg.Lookups()
	b, _, _ := c.authorEvents.Encode(author.AuthorDeleted{Code: "x"})
	for range 10 {
		if _, err := c.authorEvents.Decode(b); err != nil {
			t.Fatal(err)
		}
	}
	if n := reg.Lookups() - before; n != 0 {
		t.Errorf("%d look-ups for frames of the codec's own schema", n)
	}
}

// Types the library cannot map, tags it refuses, and unions built wrong
// fail when the codec is built. (Recursive types, embedded structs and
// uint64 fields, which the package once refused, the library maps.)
func TestNewErrors(t *testing.T) {
	reg := schemaregistry.NewMemory()
	type withIface struct {
		E author.Event `avro:"e"`
	}
	type withIntMap struct {
		M map[int]string `avro:"m"`
	}
	type badName struct {
		X string `avro:"x-y"`
	}
	type dup struct {
		A string `avro:"a"`
		B string `avro:"a"`
	}
	type badOpt struct {
		A string `avro:"a,bogus"`
	}
	for name, f := range map[string]func() error{
		"interface": func() error { _, err := avro.NewValue[withIface](reg, "x"); return err },
		"int map":   func() error { _, err := avro.NewValue[withIntMap](reg, "x"); return err },
		"bad name":  func() error { _, err := avro.NewValue[badName](reg, "x"); return err },
		"dup":       func() error { _, err := avro.NewValue[dup](reg, "x"); return err },
		"bad opt":   func() error { _, err := avro.NewValue[badOpt](reg, "x"); return err },
		"not struct": func() error {
			_, err := avro.NewValue[string](reg, "x")
			return err
		},
		"nil registry": func() error { _, err := avro.NewValue[author.State](nil, "x"); return err },
		"no members":   func() error { _, err := avro.NewUnion[author.Event](reg, "x"); return err },
		"zero member":  func() error { _, err := avro.NewUnion[author.Event](reg, "x", avro.Member{}); return err },
		"not an event": func() error { _, err := avro.NewUnion[author.Event](reg, "x", avro.Of[author.State]()); return err },
		"same member twice": func() error {
			_, err := avro.NewUnion[author.Event](reg, "x", avro.Of[author.AuthorDeleted](), avro.Of[author.AuthorDeleted]())
			return err
		},
		"same record name twice": func() error {
			_, err := avro.NewUnion[any](reg, "x", avro.Of[author.State](), avro.Of[book.State]())
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// Tags: avro names (over json names), options, skipped fields, pointers,
// nested records, maps, bytes and time.
type Kitchen struct {
	Name     string            `avro:"name"`
	Renamed  string            `json:"jsonName" avro:"avroName"`
	Skipped  string            `json:"-" avro:"-"`
	Skipped2 string            `avro:"-"`
	private  string            //nolint:unused // unexported fields are left out
	Plain    int32             // no tag: the Go name
	Opt      *string           `avro:"opt"`
	Child    *Chapterish       `avro:"child"`
	Children []Chapterish      `avro:"children"`
	Tags     map[string]string `avro:"tags"`
	Blob     []byte            `avro:"blob"`
	When     time.Time         `avro:"when"`
	WhenUS   time.Time         `avro:"whenUs,timestamp-micros"`
	Small    uint16            `avro:"small"`
	F32      float32           `avro:"f32"`
	F64      float64           `avro:"f64"`
	OK       bool              `avro:"ok"`
	Count    int               `avro:"count,default=7"`
}

type Chapterish struct {
	ID int64 `avro:"id"`
}

func TestKitchenSink(t *testing.T) {
	reg := schemaregistry.NewMemory()
	v := must(avro.NewValue[Kitchen](reg, "test.kitchen"))
	const want = `{"fields":[{"name":"name","type":"string"},{"name":"avroName","type":"string"},{"name":"Plain","type":"int"},{"default":null,"name":"opt","type":["null","string"]},{"default":null,"name":"child","type":["null",{"fields":[{"name":"id","type":"long"}],"name":"Chapterish","type":"record"}]},{"name":"children","type":{"items":"test.kitchen.Chapterish","type":"array"}},{"name":"tags","type":{"type":"map","values":"string"}},{"name":"blob","type":"bytes"},{"name":"when","type":{"logicalType":"timestamp-millis","type":"long"}},{"name":"whenUs","type":{"logicalType":"timestamp-micros","type":"long"}},{"name":"small","type":"int"},{"name":"f32","type":"float"},{"name":"f64","type":"double"},{"name":"ok","type":"boolean"},{"default":7,"name":"count","type":"long"}],"name":"Kitchen","namespace":"test.kitchen","type":"record"}`
	if got := v.Schema().JSON(); got != want {
		t.Errorf("schema:\n got %s\nwant %s", got, want)
	}
	if err := avro.Register(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	s := "x"
	in := Kitchen{
		Name: "n", Renamed: "r", Skipped: "gone", Skipped2: "gone", private: "gone", Plain: -5, Opt: &s,
		Child: &Chapterish{ID: 9}, Children: []Chapterish{{1}, {2}}, Tags: map[string]string{"a": "b"},
		Blob: []byte{0, 1, 2}, When: time.UnixMilli(1700000000123).UTC(), WhenUS: time.UnixMicro(1700000000123456).UTC(),
		Small: 65535, F32: 1.5, F64: -2.25, OK: true, Count: 3,
	}
	b, typ, err := v.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if typ != "Kitchen" {
		t.Errorf("type %q", typ)
	}
	out, err := v.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	in.Skipped, in.Skipped2, in.private = "", "", ""
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip:\n got %#v\nwant %#v", out, in)
	}
	// nil pointers and maps
	b, _, err = v.Encode(Kitchen{})
	if err != nil {
		t.Fatal(err)
	}
	out, err = v.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Opt != nil || out.Child != nil {
		t.Errorf("nil pointers came back as %v %v", out.Opt, out.Child)
	}
}
