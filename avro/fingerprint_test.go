package avro_test

import (
	"bytes"
	"testing"

	ta "github.com/twmb/avro"

	"github.com/bookscatalog/catalog/avro"
)

// specVectors are test vectors published by the Apache Avro project, in
// share/test/data/schema-tests.txt of apache/avro (the file every Avro
// implementation tests its Parsing Canonical Form and CRC-64-AVRO
// fingerprints against; the Java implementation cross-checks them with its
// slow reference implementation). Fingerprints are as published: Java's
// signed long.
var specVectors = []struct {
	input, canonical string
	fingerprint      int64
}{
	{`"null"`, `"null"`, 7195948357588979594},
	{`"boolean"`, `"boolean"`, -6970731678124411036},
	{`"int"`, `"int"`, 8247732601305521295},
	{`{"type":"int"}`, `"int"`, 8247732601305521295},
	{`"long"`, `"long"`, -3434872931120570953},
	{`{"type":"long"}`, `"long"`, -3434872931120570953},
	{`"float"`, `"float"`, 5583340709985441680},
	{`"double"`, `"double"`, -8181574048448539266},
	{`"bytes"`, `"bytes"`, 5746618253357095269},
	{`"string"`, `"string"`, -8142146995180207161},
	{`{"type":"string"}`, `"string"`, -8142146995180207161},
	{`[ "int"  ]`, `["int"]`, -5232228896498058493},
	{`[ "int" , {"type":"boolean"} ]`, `["int","boolean"]`, 5392556393470105090},
	{`{"fields":[], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}`, `{"name":"x.y.foo","type":"record","fields":[]}`, 5916914534497305771},
	{`{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}`, `{"name":"a.b.foo","type":"record","fields":[]}`, -4616218487480524110},
	{`{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[], "type":"record", "name":"foo", "aliases":["foo","bar"]}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}`, 7843277075252814651},
	{`{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":true},
	    {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
	    "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}`, -4860222112080293046},
	{`{"type":"enum", "name":"foo", "symbols":["A1"]}`, `{"name":"foo","type":"enum","symbols":["A1"]}`, -6342190197741309591},
	{`{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}`, `{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}`, -4448647247586288245},
	{`{"name":"foo","type":"fixed","size":15}`, `{"name":"foo","type":"fixed","size":15}`, 1756455273707447556},
	{`{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}`, `{"name":"x.y.z.foo","type":"fixed","size":32}`, -3064184465700546786},
	{`{ "items":{"type":"null"}, "type":"array"}`, `{"type":"array","items":"null"}`, -589620603366471059},
	{`{ "values":"string", "type":"map"}`, `{"type":"map","values":"string"}`, -8732877298790414990},
	{`{"name":"PigValue","type":"record",
	   "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}`,
		`{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}`, -1759257747318642341},
}

// referenceFingerprint is CRC-64-AVRO written from the pseudo-code of the
// Avro specification ("Schema Fingerprints"), independently of the library.
func referenceFingerprint(buf []byte) uint64 {
	const empty = 0xc15d213aa4d7a795
	var table [256]uint64
	for i := range table {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (empty & -(fp & 1))
		}
		table[i] = fp
	}
	fp := uint64(empty)
	for _, b := range buf {
		fp = (fp >> 8) ^ table[byte(fp)^b]
	}
	return fp
}

func TestSpecFingerprints(t *testing.T) {
	for _, v := range specVectors {
		s, err := avro.ParseSchema(v.input)
		if err != nil {
			t.Errorf("parse %s: %v", v.input, err)
			continue
		}
		if got := s.Canonical(); got != v.canonical {
			t.Errorf("canonical form of %s:\n got %s\nwant %s", v.input, got, v.canonical)
		}
		want := uint64(v.fingerprint)
		if got := s.Fingerprint(); got != want {
			t.Errorf("fingerprint of %s = %016x, want %016x", v.canonical, got, want)
		}
		if got := referenceFingerprint([]byte(v.canonical)); got != want {
			t.Errorf("reference fingerprint of %s = %016x, want %016x", v.canonical, got, want)
		}
	}
}

// The single-object header of "int", as published by the Apache Avro Ruby
// tests (lang/ruby/test/test_fingerprints.rb): C3 01, then the fingerprint
// 0x7275d51a3f395c8f little-endian.
func TestSpecSingleObjectHeader(t *testing.T) {
	want := []byte{0xc3, 0x01, 0x8f, 0x5c, 0x39, 0x3f, 0x1a, 0xd5, 0x75, 0x72}
	s, err := avro.ParseSchema(`{"type":"int"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := avro.AppendFrameHeader(nil, s.Fingerprint()); !bytes.Equal(got, want) {
		t.Errorf("header % x, want % x", got, want)
	}
	lib, err := ta.MustParse(`"int"`).AppendSingleObject(nil, int32(1))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(lib[:10], want) {
		t.Errorf("library header % x, want % x", lib[:10], want)
	}
	fp, body, err := avro.ParseFrame(lib)
	if err != nil || fp != 0x7275d51a3f395c8f || !bytes.Equal(body, []byte{2}) {
		t.Errorf("ParseFrame = %x, % x, %v", fp, body, err)
	}
}

// Every frame the codecs write starts with the header of the schema's
// fingerprint, and the fingerprint is the reference one of the canonical
// form.
func TestCodecFingerprints(t *testing.T) {
	c, _ := registered(t)
	for _, r := range c.all() {
		for _, s := range r.Schemas() {
			if got, want := s.Fingerprint(), referenceFingerprint([]byte(s.Canonical())); got != want {
				t.Errorf("%s: fingerprint %016x, reference %016x", s.Name(), got, want)
			}
		}
	}
	s := c.personEvents.Schemas()[0]
	b, _, err := c.personEvents.Encode(personAdded)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[:10], avro.AppendFrameHeader(nil, s.Fingerprint())) {
		t.Errorf("frame header % x, schema %s", b[:10], s)
	}
	// The library's own single-object decoding agrees with our frame.
	ls := ta.MustParse(s.JSON())
	var m map[string]any
	if _, err := ls.DecodeSingleObject(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["firstName"] != personAdded.FirstName {
		t.Errorf("library decoded %v", m)
	}
}
