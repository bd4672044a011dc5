package avro_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/schemaregistry"
)

func record(name, fields string) string {
	return `{"type":"record","name":"` + name + `","namespace":"test.people","fields":[` + fields + `]}`
}

func TestCheckCompatible(t *testing.T) {
	const code = `{"name":"code","type":"string"}`
	cases := []struct {
		name        string
		old, new    string
		field, want string // want "" means compatible
	}{
		{"same", record("E", code), record("E", code), "", ""},
		{"field added with default", record("E", code), record("E", code+`,{"name":"n","type":"long","default":0}`), "", ""},
		{"optional field added", record("E", code), record("E", code+`,{"name":"n","type":["null","string"],"default":null}`), "", ""},
		{"field removed", record("E", code+`,{"name":"n","type":"long"}`), record("E", code), "", ""},
		{"int widened to long", record("E", `{"name":"n","type":"int"}`), record("E", `{"name":"n","type":"long"}`), "", ""},
		{"field renamed with alias", record("E", `{"name":"old","type":"string"}`), record("E", `{"name":"new","type":"string","aliases":["old"]}`), "", ""},
		{"union branch added", record("E", `{"name":"n","type":["null","string"]}`), record("E", `{"name":"n","type":["null","string","long"]}`), "", ""},
		{"made optional", record("E", `{"name":"n","type":"string"}`), record("E", `{"name":"n","type":["null","string"]}`), "", ""},

		{"field added without default", record("E", code), record("E", code+`,{"name":"middleName","type":"string"}`),
			"middleName", "field added without a default"},
		{"type narrowed", record("E", `{"name":"n","type":"long"}`), record("E", `{"name":"n","type":"int"}`),
			"n", "type narrowed from long to int"},
		{"double narrowed to float", record("E", `{"name":"n","type":"double"}`), record("E", `{"name":"n","type":"float"}`),
			"n", "type narrowed from double to float"},
		{"type changed", record("E", `{"name":"n","type":"string"}`), record("E", `{"name":"n","type":"long"}`),
			"n", "type changed from string to long"},
		{"logical type added", record("E", `{"name":"n","type":"long"}`), record("E", `{"name":"n","type":{"type":"long","logicalType":"timestamp-millis"}}`),
			"n", "logical type changed from none to timestamp-millis"},
		{"logical type changed", record("E", `{"name":"n","type":{"type":"long","logicalType":"timestamp-millis"}}`), record("E", `{"name":"n","type":{"type":"long","logicalType":"timestamp-micros"}}`),
			"n", "logical type changed from timestamp-millis to timestamp-micros"},
		{"logical type removed", record("E", `{"name":"n","type":{"type":"string","logicalType":"uuid"}}`), record("E", `{"name":"n","type":"string"}`),
			"n", "logical type changed from uuid to none"},
		{"union branch removed", record("E", `{"name":"n","type":["null","string","long"]}`), record("E", `{"name":"n","type":["null","string"]}`),
			"n", "union branch long removed"},
		{"no longer optional", record("E", `{"name":"n","type":["null","string"],"default":null}`), record("E", `{"name":"n","type":"string"}`),
			"n", "union branch null removed"},
		{"nested field added without default",
			record("S", `{"name":"chapters","type":{"type":"array","items":{"type":"record","name":"Chapter","fields":[{"name":"id","type":"long"}]}}}`),
			record("S", `{"name":"chapters","type":{"type":"array","items":{"type":"record","name":"Chapter","fields":[{"name":"id","type":"long"},{"name":"title","type":"string"}]}}}`),
			"chapters[].title", "field added without a default"},
		{"nested record renamed",
			record("S", `{"name":"c","type":{"type":"record","name":"Chapter","fields":[]}}`),
			record("S", `{"name":"c","type":{"type":"record","name":"Part","fields":[]}}`),
			"c", "record test.people.Chapter renamed to test.people.Part without an alias"},
		{"enum symbol removed",
			record("E", `{"name":"e","type":{"type":"enum","name":"Kind","symbols":["A","B"]}}`),
			record("E", `{"name":"e","type":{"type":"enum","name":"Kind","symbols":["A"]}}`),
			"e", "enum symbol B removed without an enum default"},
		{"field in map values added without default",
			record("S", `{"name":"m","type":{"type":"map","values":{"type":"record","name":"V","fields":[]}}}`),
			record("S", `{"name":"m","type":{"type":"map","values":{"type":"record","name":"V","fields":[{"name":"x","type":"int"}]}}}`),
			"m{}.x", "field added without a default"},
		{"logical type added to array items",
			record("E", `{"name":"a","type":{"type":"array","items":"long"}}`),
			record("E", `{"name":"a","type":{"type":"array","items":{"type":"long","logicalType":"timestamp-millis"}}}`),
			"a[]", "logical type changed from none to timestamp-millis"},
		{"renamed with alias and narrowed", record("E", `{"name":"old","type":"long"}`), record("E", `{"name":"new","type":"int","aliases":["old"]}`),
			"new", "type narrowed from long to int"},
		{"type became a union without it", record("E", `{"name":"n","type":"long"}`), record("E", `{"name":"n","type":["null","string"]}`),
			"n", "type changed from long to a union with no branch for it"},
		{"fixed size changed",
			record("E", `{"name":"f","type":{"type":"fixed","name":"F","size":4}}`),
			record("E", `{"name":"f","type":{"type":"fixed","name":"F","size":8}}`),
			"f", "fixed size changed from fixed(4) to fixed(8)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, err := avro.ParseSchema(tc.old)
			if err != nil {
				t.Fatal(err)
			}
			cur, err := avro.ParseSchema(tc.new)
			if err != nil {
				t.Fatal(err)
			}
			err = avro.CheckCompatible([]*avro.Schema{old}, cur)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused a compatible change: %v", err)
				}
				return
			}
			var ie *avro.IncompatibleError
			if !errors.As(err, &ie) || !errors.Is(err, avro.ErrIncompatible) {
				t.Fatalf("err = %v, want an *IncompatibleError", err)
			}
			if ie.Type != cur.Name() || ie.Field != tc.field || !strings.Contains(ie.Problem, tc.want) {
				t.Errorf("got type %q field %q problem %q; want %q %q %q", ie.Type, ie.Field, ie.Problem, cur.Name(), tc.field, tc.want)
			}
			if !strings.Contains(err.Error(), cur.Name()) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("message %q does not name the type and field", err)
			}
			if hint := "remove it with `catalog schemas delete " + avro.FormatFingerprint(old.Fingerprint()) + "`"; !strings.Contains(err.Error(), hint) {
				t.Errorf("message %q does not say how to remove the registered schema (%s)", err, hint)
			}
		})
	}
}

// Only versions of the same record count, and every one of them does.
func TestCheckCompatibleTransitive(t *testing.T) {
	v1 := must(avro.ParseSchema(record("E", `{"name":"a","type":"string"}`)))
	v2 := must(avro.ParseSchema(record("E", `{"name":"a","type":"string"},{"name":"b","type":"string","default":""}`)))
	v3 := must(avro.ParseSchema(record("E", `{"name":"b","type":"string"}`))) // reads v2, not v1
	other := must(avro.ParseSchema(record("Other", `{"name":"z","type":"int"}`)))
	if err := avro.CheckCompatible([]*avro.Schema{v2, other}, v3); err != nil {
		t.Errorf("against v2 only: %v", err)
	}
	err := avro.CheckCompatible([]*avro.Schema{v1, v2, other}, v3)
	var ie *avro.IncompatibleError
	if !errors.As(err, &ie) || ie.Field != "b" || ie.Writer != v1.Fingerprint() {
		t.Errorf("against v1 and v2: %v", err)
	}
}

// Register refuses to start a service whose type changed incompatibly, and
// names the type and the field.
func TestRegisterRefusesIncompatible(t *testing.T) {
	ctx := context.Background()
	reg := schemaregistry.NewMemory()
	var v1fp uint64
	{
		type PersonAdded struct {
			Code      string `avro:"code"`
			FirstName string `avro:"firstName"`
			LastName  string `avro:"lastName"`
		}
		v1 := must(avro.NewValue[PersonAdded](reg, peopleNS))
		if err := avro.Register(ctx, v1); err != nil {
			t.Fatal(err)
		}
		v1fp = v1.Schema().Fingerprint()
	}
	{
		type PersonAdded struct {
			Code       string `avro:"code"`
			FirstName  string `avro:"firstName"`
			MiddleName string `avro:"middleName"`
			LastName   string `avro:"lastName"`
		}
		bad := must(avro.NewValue[PersonAdded](reg, peopleNS))
		err := avro.Register(ctx, bad)
		if !errors.Is(err, avro.ErrIncompatible) || !strings.Contains(err.Error(), "test.people.PersonAdded") ||
			!strings.Contains(err.Error(), "field middleName: field added without a default") ||
			!strings.Contains(err.Error(), "remove it with `catalog schemas delete "+avro.FormatFingerprint(v1fp)+"`") {
			t.Fatalf("err = %v", err)
		}
		t.Log(err)
		if _, _, err := bad.Encode(PersonAdded{}); !errors.Is(err, avro.ErrNotRegistered) {
			t.Errorf("encode after a refused Register: %v", err)
		}
		all, _ := reg.All(ctx)
		if len(all) != 1 {
			t.Errorf("the registry holds %d schemas after a refused Register", len(all))
		}
	}
	{
		type PersonAdded struct {
			Code       string `avro:"code"`
			FirstName  string `avro:"firstName"`
			MiddleName string `avro:"middleName,default="`
			LastName   string `avro:"lastName"`
		}
		good := must(avro.NewValue[PersonAdded](reg, peopleNS))
		if err := avro.Register(ctx, good); err != nil {
			t.Fatal(err)
		}
	}
}
