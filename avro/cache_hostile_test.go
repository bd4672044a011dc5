package avro_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/avro"
)

// Found by a review for unbounded memory growth; failed before its fix.

// A codec kept the resolved writer schema of every fingerprint it ever
// decoded a frame of, for good: whoever can write to the registry topic
// and to a topic the service reads could register a new schema per record
// (and tombstone it after, so that even the registry forgets it), and each
// instance's codecs grew by one resolved schema per record, without bound.
// The cache of other writers' schemas is bounded now; the codec's own
// schemas are never evicted.
func TestWriterSchemaCacheIsBounded(t *testing.T) {
	c, reg := registered(t)
	ctx := context.Background()
	n := avro.MaxCachedWriters + 500
	for i := range n {
		var js string
		var wantErr error
		if i%2 == 0 {
			// A compatible older writer: resolved and kept.
			js = fmt.Sprintf(`{"type":"record","name":"PersonRemoved","namespace":"test.people","fields":[{"name":"code","type":"string"},{"name":"x%d","type":"long","default":0}]}`, i)
		} else {
			// A record of no member's type: refused, and the refusal kept.
			js = fmt.Sprintf(`{"type":"record","name":"Stranger%d","namespace":"test.people","fields":[{"name":"code","type":"string"}]}`, i)
			wantErr = avro.ErrWrongType
		}
		fp := must(reg.Register(ctx, js))
		frame := append(avro.AppendFrameHeader(nil, fp), 2, 'a', 0)
		got, err := c.personEvents.Decode(frame)
		if !errors.Is(err, wantErr) || wantErr == nil && got != (PersonRemoved{Code: "a"}) {
			t.Fatalf("frame %d: %#v, %v; want error %v", i, got, err, wantErr)
		}
	}
	if got := avro.CachedWriters(c.personEvents); got > avro.MaxCachedWriters {
		t.Errorf("after frames of %d writer schemas the codec holds %d of them, more than %d", n, got, avro.MaxCachedWriters)
	}
	// Its own frames still decode, without a look-up.
	b, _, err := c.personEvents.Encode(personAdded)
	if err != nil {
		t.Fatal(err)
	}
	before := reg.Lookups()
	if got, err := c.personEvents.Decode(b); err != nil || got != personAdded {
		t.Fatalf("own frame: %#v, %v", got, err)
	}
	if reg.Lookups() != before {
		t.Error("an own frame was looked up after the cache filled")
	}
}

// A count alone did not bound the cache's memory: a writer schema may be as
// large as a registry record (1 MiB by default), and a resolved one keeps
// all of it. The cache is bounded in bytes too.
func TestWriterSchemaCacheIsBoundedInBytes(t *testing.T) {
	c, reg := registered(t)
	ctx := context.Background()
	doc := strings.Repeat("d", 64<<10)
	n := 2*avro.MaxCachedWriterBytes/len(doc) + 10
	for i := range n {
		js := fmt.Sprintf(`{"type":"record","name":"PersonRemoved","namespace":"test.people","doc":%q,"fields":[{"name":"code","type":"string"},{"name":"x%d","type":"long","default":0}]}`, doc, i)
		fp := must(reg.Register(ctx, js))
		frame := append(avro.AppendFrameHeader(nil, fp), 2, 'a', 0)
		if got, err := c.personEvents.Decode(frame); err != nil || got != (PersonRemoved{Code: "a"}) {
			t.Fatalf("frame %d: %#v, %v", i, got, err)
		}
	}
	if got := avro.CachedWriterBytes(c.personEvents); got > avro.MaxCachedWriterBytes {
		t.Errorf("after frames of %d writer schemas of %d KiB the codec holds %d KiB of them, more than %d KiB",
			n, len(doc)>>10, got>>10, avro.MaxCachedWriterBytes>>10)
	}
}
