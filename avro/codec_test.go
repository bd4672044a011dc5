package avro_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// The codecs are es.Codecs.
var (
	_ es.Codec[Person]        = (*avro.Value[Person])(nil)
	_ es.Codec[PersonCommand] = (*avro.Union[PersonCommand])(nil)
	_ es.Codec[PersonEvent]   = (*avro.Union[PersonEvent])(nil)
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

func TestRoundTripPerson(t *testing.T) {
	c, _ := registered(t)
	roundTrip(t, c.person, Person{Code: "ada", FirstName: "Ada", LastName: "Lovelace", Version: 3}, "Person")
	roundTrip(t, c.person, Person{}, "Person")
	roundTrip[PersonCommand](t, c.personCommands, AddPerson{Code: "a", FirstName: "Ä", LastName: "日本"}, "AddPerson")
	roundTrip[PersonCommand](t, c.personCommands, RenamePerson{Code: "a", FirstName: "B", LastName: "C"}, "RenamePerson")
	roundTrip[PersonCommand](t, c.personCommands, RemovePerson{Code: "a"}, "RemovePerson")
	roundTrip[PersonEvent](t, c.personEvents, PersonAdded{Code: "a", FirstName: "B", LastName: "C"}, "PersonAdded")
	roundTrip[PersonEvent](t, c.personEvents, PersonRenamed{Code: "a", FirstName: "B", LastName: "C"}, "PersonRenamed")
	roundTrip[PersonEvent](t, c.personEvents, PersonRemoved{Code: "a"}, "PersonRemoved")
}

func TestRoundTripShelf(t *testing.T) {
	c, _ := registered(t)
	roundTrip(t, c.shelf, fullShelf, "Shelf")
	roundTrip(t, c.shelf, Shelf{ID: shelfID, Title: "Empty", Items: []Item{}, NextItemID: 1, Version: 1}, "Shelf")
	roundTrip[ShelfCommand](t, c.shelfCommands, AddShelf{ID: shelfID, Title: "T", Owner: "x"}, "AddShelf")
	roundTrip[ShelfCommand](t, c.shelfCommands, PutItem{ID: shelfID, Title: "T", Content: strings.Repeat("x", 100_000)}, "PutItem")
	roundTrip[ShelfCommand](t, c.shelfCommands, RemoveItem{ID: shelfID, ItemID: 1 << 40}, "RemoveItem")
	roundTrip[ShelfEvent](t, c.shelfEvents, ShelfAdded{ID: shelfID, Title: "T"}, "ShelfAdded")
	roundTrip[ShelfEvent](t, c.shelfEvents, ItemPut{ID: shelfID, ItemID: 2, Title: "T", Content: "C"}, "ItemPut")
	roundTrip[ShelfEvent](t, c.shelfEvents, ItemRemoved{ID: shelfID, ItemID: -1}, "ItemRemoved")
}

// Avro has no null for arrays, maps and bytes: nil and empty are the same on
// the wire. Empty arrays and maps read back as empty, non-nil values (so a
// shelf without items renders as "items": []), empty bytes as nil (so
// "no bytes" tests like b == nil keep working).
func TestNilAndEmpty(t *testing.T) {
	c, _ := registered(t)
	b, _, err := c.shelf.Encode(Shelf{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.shelf.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Items == nil || len(got.Items) != 0 {
		t.Errorf("items = %#v, want empty", got.Items)
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

func TestEncodeBeforeRegister(t *testing.T) {
	reg := schemaregistry.NewMemory()
	c := newCodecs(t, reg)
	_, _, err := c.personEvents.Encode(PersonRemoved{Code: "a"})
	if !errors.Is(err, avro.ErrNotRegistered) {
		t.Fatalf("err = %v, want ErrNotRegistered", err)
	}
	if err := avro.Register(context.Background(), c.personEvents); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.personEvents.Encode(PersonRemoved{Code: "a"}); err != nil {
		t.Fatal(err)
	}
	all, _ := reg.All(context.Background())
	if len(all) != 3 {
		t.Errorf("registry holds %d schemas, want the 3 person events", len(all))
	}
	// Registering again is idempotent.
	if err := avro.Register(context.Background(), c.all()...); err != nil {
		t.Fatal(err)
	}
	if err := avro.Register(context.Background(), newCodecs(t, reg).all()...); err != nil {
		t.Fatal(err)
	}
	all, _ = reg.All(context.Background())
	if len(all) != schemaCount {
		t.Errorf("registry holds %d schemas, want %d", len(all), schemaCount)
	}
}

func TestEncodeErrors(t *testing.T) {
	c, _ := registered(t)
	if _, _, err := c.personEvents.Encode(nil); err == nil {
		t.Error("encoding nil: no error")
	}
	type other struct{ PersonEvent }
	if _, _, err := c.personEvents.Encode(other{}); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Errorf("encoding a non-member: %v", err)
	}
}

func TestDecodeWrongType(t *testing.T) {
	c, _ := registered(t)
	b, _, err := c.personEvents.Encode(PersonAdded{Code: "a", FirstName: "B", LastName: "C"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.person.Decode(b)
	if !errors.Is(err, avro.ErrWrongType) || !strings.Contains(err.Error(), "test.people.PersonAdded") {
		t.Errorf("decoding an event as a state: %v", err)
	}
	_, err = c.shelfEvents.Decode(b)
	if !errors.Is(err, avro.ErrWrongType) {
		t.Errorf("decoding a person event as a shelf event: %v", err)
	}
	// A command is not an event, although the fields are the same.
	cmd, _, _ := c.personCommands.Encode(AddPerson{Code: "a", FirstName: "B", LastName: "C"})
	if _, err := c.personEvents.Decode(cmd); !errors.Is(err, avro.ErrWrongType) {
		t.Errorf("decoding a command as an event: %v", err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	c, _ := registered(t)
	good, _, err := c.personEvents.Encode(PersonAdded{Code: "abc", FirstName: "B", LastName: "C"})
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
		{"json", []byte(`{"type":"PersonAdded","code":"a"}`), avro.ErrNotAvro, "want 0xc3 0x01"},
		{"unknown fingerprint", unknownFP, avro.ErrUnknownSchema, "0123456789abcdef"},
		{"truncated body", good[:len(good)-1], avro.ErrMalformedBody, "written with schema"},
		{"header only", good[:avro.HeaderLen], avro.ErrMalformedBody, ""},
		{"trailing bytes", append(append([]byte{}, good...), 0, 0), avro.ErrMalformedBody, "2 bytes after the record"},
		{"negative length", append(append([]byte{}, good[:avro.HeaderLen]...), 0x01), avro.ErrMalformedBody, ""},
		{"huge length", append(append([]byte{}, good[:avro.HeaderLen]...), 0xfe, 0xff, 0xff, 0xff, 0x0f), avro.ErrMalformedBody, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.personEvents.Decode(tc.b)
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
	header := avro.AppendFrameHeader(nil, c.shelf.Schema().Fingerprint())
	for name, items := range map[string][]byte{
		"count 2^40":                {0x80, 0x80, 0x80, 0x80, 0x80, 0x40},
		"negative count, huge size": {0x01, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"max varint":                {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"overlong varint":           {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"count 1, then nothing":     {0x02},
		"count 1, item truncated":   {0x02, 0x02},
	} {
		t.Run(name, func(t *testing.T) {
			frame := append(append(append([]byte{}, header...), 0, 0, 0), items...)
			start := time.Now()
			_, err := c.shelf.Decode(frame)
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
	old := `{"type":"record","name":"PersonRemoved","namespace":"test.people","fields":[{"name":"code","type":"string"},{"name":"reason","type":"string"}]}`
	fp := must(reg.Register(context.Background(), old))
	frame := append(avro.AppendFrameHeader(nil, fp), 2, 'a', 2, 'b')

	u := must(avro.NewUnion[PersonEvent](unavailable{reg}, peopleNS, avro.Of[PersonRemoved]()))
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
	got, err := c.personEvents.Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if got != (PersonRemoved{Code: "a"}) {
		t.Errorf("got %#v", got)
	}
}

// Decoding a writer's schema looks it up once, then uses the cache.
func TestLookupCached(t *testing.T) {
	c, reg := registered(t)
	old := `{"type":"record","name":"PersonRemoved","namespace":"test.people","fields":[{"name":"code","type":"string"},{"name":"when","type":"long","default":0}]}`
	fp := must(reg.Register(context.Background(), old))
	frame := append(avro.AppendFrameHeader(nil, fp), 2, 'a', 4)
	before := reg.Lookups()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := c.personEvents.Decode(frame); err != nil {
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
	b, _, _ := c.personEvents.Encode(PersonRemoved{Code: "x"})
	for range 10 {
		if _, err := c.personEvents.Decode(b); err != nil {
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
		E PersonEvent `avro:"e"`
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
		"nil registry": func() error { _, err := avro.NewValue[Person](nil, "x"); return err },
		"no members":   func() error { _, err := avro.NewUnion[PersonEvent](reg, "x"); return err },
		"zero member":  func() error { _, err := avro.NewUnion[PersonEvent](reg, "x", avro.Member{}); return err },
		"not an event": func() error { _, err := avro.NewUnion[PersonEvent](reg, "x", avro.Of[Person]()); return err },
		"same member twice": func() error {
			_, err := avro.NewUnion[PersonEvent](reg, "x", avro.Of[PersonRemoved](), avro.Of[PersonRemoved]())
			return err
		},
		"same record name twice": func() error {
			outer := avro.Of[Person]()
			type Person struct {
				Other string `avro:"other"`
			}
			_, err := avro.NewUnion[any](reg, "x", outer, avro.Of[Person]())
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

// CheckMembers holds a union to the list of types its domain declares.
func TestCheckMembers(t *testing.T) {
	c, _ := registered(t)
	if err := c.personEvents.CheckMembers(personEvents()); err != nil {
		t.Fatalf("the declared list: %v", err)
	}
	// A type the domain declares but the union lacks, as when an event is
	// added to the domain and forgotten in the codec.
	short := must(avro.NewUnion[PersonEvent](schemaregistry.NewMemory(), peopleNS, avro.Of[PersonAdded](), avro.Of[PersonRemoved]()))
	err := short.CheckMembers(personEvents())
	if err == nil || !strings.Contains(err.Error(), "avro_test.PersonRenamed is declared but not a member") {
		t.Errorf("a declared type missing from the union: %v", err)
	}
	// A member the domain does not declare.
	err = c.personEvents.CheckMembers([]PersonEvent{PersonAdded{}, PersonRenamed{}})
	if err == nil || !strings.Contains(err.Error(), "avro_test.PersonRemoved is a member but not declared") {
		t.Errorf("a member missing from the list: %v", err)
	}
	if err := c.personEvents.CheckMembers([]PersonEvent{PersonAdded{}, PersonRenamed{}, PersonRemoved{}, nil}); err == nil {
		t.Error("a nil in the list passed")
	}
}
