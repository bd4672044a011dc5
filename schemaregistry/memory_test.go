package schemaregistry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/schemaregistry"
)

var (
	_ avro.Registry = (*schemaregistry.Memory)(nil)
	_ avro.Registry = (*schemaregistry.Registry)(nil)
)

func TestMemory(t *testing.T) {
	ctx := context.Background()
	m := schemaregistry.NewMemory()
	fp, err := m.Register(ctx, schemaA)
	if err != nil || fp != fingerprint(t, schemaA) {
		t.Fatal(fp, err)
	}
	if fp2, err := m.Register(ctx, schemaA2); err != nil || fp2 != fp {
		t.Errorf("equal JSON: %x, %v", fp2, err)
	}
	if _, err := m.Register(ctx, schemaA3); !errors.Is(err, schemaregistry.ErrConflict) {
		t.Errorf("conflict: %v", err)
	}
	if _, err := m.Register(ctx, `"nope"`); err == nil {
		t.Error("registered an invalid schema")
	}
	if js, err := m.Lookup(ctx, fp); err != nil || js != schemaA {
		t.Errorf("Lookup = %q, %v", js, err)
	}
	if _, err := m.Lookup(ctx, 1); !errors.Is(err, avro.ErrUnknownSchema) {
		t.Errorf("unknown: %v", err)
	}
	all, err := m.All(ctx)
	if err != nil || len(all) != 1 {
		t.Errorf("All = %v, %v", all, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Lookup(cctx, fp); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestKey(t *testing.T) {
	k := schemaregistry.Key(0x0102030405060708)
	if string(k) != "\x01\x02\x03\x04\x05\x06\x07\x08" {
		t.Errorf("Key = % x", k)
	}
	if fp, err := schemaregistry.ParseKey(k); err != nil || fp != 0x0102030405060708 {
		t.Errorf("ParseKey = %x, %v", fp, err)
	}
	if _, err := schemaregistry.ParseKey([]byte("0102030405060708")); err == nil {
		t.Error("parsed a 16-byte key")
	}
}
