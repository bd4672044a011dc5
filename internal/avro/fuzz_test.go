package avro_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bookscatalog/catalog/internal/avro"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/internal/domain/book"
	"github.com/bookscatalog/catalog/internal/schemaregistry"
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
	seeds = append(seeds, nil, []byte{0xc3}, []byte{0xc3, 0x01}, avro.AppendFrameHeader(nil, 0),
		append(avro.AppendFrameHeader(nil, 1), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
	return seeds
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

func FuzzParseFrame(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fp, body, err := avro.ParseFrame(b)
		if err != nil {
			if !errors.Is(err, avro.ErrNotAvro) {
				t.Fatalf("error %v is not ErrNotAvro", err)
			}
			return
		}
		if len(b) < avro.HeaderLen || len(body) != len(b)-avro.HeaderLen {
			t.Fatalf("accepted %d bytes, body %d", len(b), len(body))
		}
		if got := avro.AppendFrameHeader(nil, fp); string(got) != string(b[:avro.HeaderLen]) {
			t.Fatalf("header % x does not re-encode: % x", b[:avro.HeaderLen], got)
		}
	})
}

// FuzzDecode feeds arbitrary bytes to the codecs of both aggregates: they
// must return a value or an error, never panic; and a value they return must
// survive encoding and decoding again.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	reg := schemaregistry.NewMemory()
	c := newCodecs(f, reg)
	if err := avro.Register(context.Background(), c.all()...); err != nil {
		f.Fatal(err)
	}
	fuzzRegistry(f, reg)
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(v any, err error, again func(any) (any, error)) {
			if err != nil {
				for _, known := range []error{avro.ErrNotAvro, avro.ErrUnknownSchema, avro.ErrWrongType, avro.ErrIncompatible, avro.ErrMalformedBody} {
					if errors.Is(err, known) {
						return
					}
				}
				t.Fatalf("unclassified error: %v", err)
			}
			w, err := again(v)
			if err != nil {
				t.Fatalf("%#v does not survive re-encoding: %v", v, err)
			}
			if !reflect.DeepEqual(v, w) {
				t.Fatalf("re-encoding changed %#v into %#v", v, w)
			}
		}
		{
			v, err := avro.DecodeNoRecover(c.authorState, b)
			check(v, err, func(v any) (any, error) { return reencode(c.authorState, v.(author.State)) })
		}
		{
			v, err := avro.DecodeUnionNoRecover(c.authorCommands, b)
			check(v, err, func(v any) (any, error) { return reencode(c.authorCommands, v.(author.Command)) })
		}
		{
			v, err := avro.DecodeUnionNoRecover(c.authorEvents, b)
			check(v, err, func(v any) (any, error) { return reencode(c.authorEvents, v.(author.Event)) })
		}
		{
			v, err := avro.DecodeNoRecover(c.bookState, b)
			check(v, err, func(v any) (any, error) { return reencode(c.bookState, v.(book.State)) })
		}
		{
			v, err := avro.DecodeUnionNoRecover(c.bookCommands, b)
			check(v, err, func(v any) (any, error) { return reencode(c.bookCommands, v.(book.Command)) })
		}
		{
			v, err := avro.DecodeUnionNoRecover(c.bookEvents, b)
			check(v, err, func(v any) (any, error) { return reencode(c.bookEvents, v.(book.Event)) })
		}
	})
}

type codec[T any] interface {
	Encode(T) ([]byte, string, error)
	Decode([]byte) (T, error)
}

func reencode[T any](c codec[T], v T) (any, error) {
	b, _, err := c.Encode(v)
	if err != nil {
		return nil, err
	}
	return c.Decode(b)
}
