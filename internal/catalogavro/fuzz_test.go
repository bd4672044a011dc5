package catalogavro_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// fuzzSeeds are the frozen frames (every version of every type, and the
// older versions of the evolution cases), plus a few broken ones.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, dir := range []string{framesDir, evolutionDir} {
		paths, err := filepath.Glob(filepath.Join(dir, "*.hex"))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			seeds = append(seeds, readFrames(f, p)...)
		}
	}
	if len(seeds) < 40 {
		f.Fatalf("only %d seed frames", len(seeds))
	}
	return append(seeds, nil, []byte{0xc3}, []byte{0xc3, 0x01}, avro.AppendFrameHeader(nil, 0),
		append(avro.AppendFrameHeader(nil, 1), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
}

// fuzzRegistry holds every frozen schema and every evolution case's older
// schema, so that fuzzed frames go through schema resolution too.
// (Registered after the codecs', for one of them is incompatible.)
func fuzzRegistry(f *testing.F, reg *schemaregistry.Memory) {
	ctx := context.Background()
	paths, _ := filepath.Glob(filepath.Join(schemasDir, "*.avsc"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := reg.Register(ctx, string(b)); err != nil {
			f.Fatal(err)
		}
	}
	for _, tc := range evolutionCases() {
		if _, err := reg.Register(ctx, tc.schema); err != nil {
			f.Fatal(err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes, seeded with the frozen frames, to the
// codecs of the catalog's aggregates: they must return a value or a
// classified error (a decoder panic, which Decode turns into an error, is
// a failure); and a value they return must survive encoding and decoding
// again. (Package avro fuzzes its decoder without the recovery, on a
// domain of its own.)
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	reg := schemaregistry.NewMemory()
	c := newCodecs(f, reg)
	if err := avro.Register(context.Background(), c.All()...); err != nil {
		f.Fatal(err)
	}
	fuzzRegistry(f, reg)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzOne(t, c.AuthorState, b)
		fuzzOne(t, c.AuthorCommands, b)
		fuzzOne(t, c.AuthorEvents, b)
		fuzzOne(t, c.BookState, b)
		fuzzOne(t, c.BookCommands, b)
		fuzzOne(t, c.BookEvents, b)
	})
}

// fuzzOne decodes b with c and checks the result as FuzzDecode says.
func fuzzOne[T any](t *testing.T, c es.Codec[T], b []byte) {
	t.Helper()
	v, err := c.Decode(b)
	if err != nil {
		if strings.Contains(err.Error(), "decoder panic") {
			t.Fatalf("decoder panic: %v", err)
		}
		for _, known := range []error{avro.ErrNotAvro, avro.ErrUnknownSchema, avro.ErrWrongType, avro.ErrIncompatible, avro.ErrMalformedBody} {
			if errors.Is(err, known) {
				return
			}
		}
		t.Fatalf("unclassified error: %v", err)
	}
	again, _, err := c.Encode(v)
	if err != nil {
		t.Fatalf("%#v does not encode again: %v", v, err)
	}
	w, err := c.Decode(again)
	if err != nil {
		t.Fatalf("%#v does not decode again: %v", v, err)
	}
	if !reflect.DeepEqual(v, w) {
		t.Fatalf("re-encoding changed %#v into %#v", v, w)
	}
}

// The codecs are es.Codecs of the domain's types.
var (
	_ es.Codec[author.State] = (*avro.Value[author.State])(nil)
	_ es.Codec[book.Command] = (*avro.Union[book.Command])(nil)
)
