// Package jsoncodec encodes values as JSON objects, as es.Codecs: Value
// for one struct type (an aggregate's state), Union for the concrete
// types behind an interface (its commands or events), each a flat object
// tagged with a "type" member, {"type":"Deposited","amount":100}, the same
// shape the HTTP layer (package httpapi) shows for commands and events.
// Records written this way are readable by anyone with a JSON parser,
// but carry no schema: package avro is the codec for records that must
// evolve safely.
package jsoncodec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
)

// Value encodes one concrete type T as a JSON object.
type Value[T any] struct {
	// Name is returned as the type name of every value.
	Name string
}

// Encode implements es.Codec.
func (c Value[T]) Encode(v T) ([]byte, string, error) {
	b, err := json.Marshal(v)
	return b, c.Name, err
}

// Decode implements es.Codec.
func (c Value[T]) Decode(b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode %s: %w", c.Name, err)
	}
	return v, nil
}

// Union encodes the concrete struct types registered for the interface type
// I. Build one with NewUnion.
type Union[I any] struct {
	byName map[string]reflect.Type
	byType map[reflect.Type]string
}

// NewUnion returns a codec for the given concrete values of I; each value's
// Go type name (without package; a pointer's, its element's) becomes its
// "type" tag. It panics on a member without a type name, or on two members
// whose names are the same: either would decode one type as another.
func NewUnion[I any](members ...I) *Union[I] {
	u := &Union[I]{byName: map[string]reflect.Type{}, byType: map[reflect.Type]string{}}
	for _, m := range members {
		t := reflect.TypeOf(m)
		if t == nil {
			panic("jsoncodec: NewUnion: a nil member")
		}
		name := t.Name()
		if t.Kind() == reflect.Pointer {
			name = t.Elem().Name()
		}
		if name == "" {
			panic(fmt.Sprintf("jsoncodec: NewUnion: member type %v has no name to tag it with", t))
		}
		if other, ok := u.byName[name]; ok && other != t {
			panic(fmt.Sprintf("jsoncodec: NewUnion: members %v and %v would both be tagged %q", other, t, name))
		}
		u.byName[name] = t
		u.byType[t] = name
	}
	return u
}

// Names returns the registered type names, sorted, so that a message
// listing them reads the same every time.
func (u *Union[I]) Names() []string {
	return slices.Sorted(maps.Keys(u.byName))
}

// New returns a pointer to a new zero value of the named type, for callers
// that decode the members themselves (the HTTP API does so strictly).
func (u *Union[I]) New(name string) (any, bool) {
	t, ok := u.byName[name]
	if !ok {
		return nil, false
	}
	return reflect.New(t).Interface(), true
}

// Encode implements es.Codec.
func (u *Union[I]) Encode(v I) ([]byte, string, error) {
	name, ok := u.byType[reflect.TypeOf(v)]
	if !ok {
		return nil, "", fmt.Errorf("encode %T: type not registered", v)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, "", fmt.Errorf("encode %s: %w", name, err)
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, "", fmt.Errorf("encode %s: not a JSON object", name)
	}
	var buf bytes.Buffer
	buf.Grow(len(body) + len(name) + 12)
	buf.WriteString(`{"type":`)
	tag, _ := json.Marshal(name)
	buf.Write(tag)
	if len(body) > 2 {
		buf.WriteByte(',')
	}
	buf.Write(body[1:])
	return buf.Bytes(), name, nil
}

// Decode implements es.Codec. Unknown members are ignored so that a reader
// tolerates fields added by a newer writer.
func (u *Union[I]) Decode(b []byte) (I, error) {
	var zero I
	var tag struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(b, &tag); err != nil {
		return zero, fmt.Errorf("decode: %w", err)
	}
	if tag.Type == nil {
		return zero, fmt.Errorf("decode: missing \"type\" member")
	}
	p, ok := u.New(*tag.Type)
	if !ok {
		return zero, fmt.Errorf("decode: unknown type %q", *tag.Type)
	}
	if err := json.Unmarshal(b, p); err != nil {
		return zero, fmt.Errorf("decode %s: %w", *tag.Type, err)
	}
	v, ok := reflect.ValueOf(p).Elem().Interface().(I)
	if !ok {
		return zero, fmt.Errorf("decode %s: does not implement %s", *tag.Type, reflect.TypeFor[I]())
	}
	return v, nil
}
