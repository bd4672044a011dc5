package avro

import (
	"fmt"
	"reflect"
)

// github.com/twmb/avro maps struct fields to record fields by their avro
// tag or else their Go name. Our domain types carry json tags only, and
// their Avro field names are the json names, so a codec works on a
// "shadow" of each type: a struct type built with reflect.StructOf that has
// the same fields, of shadowed types, tagged avro:"<name>". A value is
// converted to its shadow before encoding and back after decoding. For a
// struct whose fields need no shadowing of their own this is one
// reflect.Value.Convert (conversion ignores struct tags); otherwise it goes
// field by field, element by element. Nothing is reinterpreted in place.

// conv converts a value to another, structurally equal type.
type conv func(reflect.Value) reflect.Value

// shadowOf returns the shadow of t: t itself when t holds no struct to
// rename (strings, numbers, []byte, time.Time…).
func shadowOf(t reflect.Type) (reflect.Type, error) {
	switch t.Kind() {
	case reflect.Struct:
		if t == timeType {
			return t, nil
		}
		fields, err := structFields(t)
		if err != nil {
			return nil, err
		}
		sfs := make([]reflect.StructField, len(fields))
		for i, f := range fields {
			ft, err := shadowOf(f.typ)
			if err != nil {
				return nil, err
			}
			sfs[i] = reflect.StructField{Name: f.goName, Type: ft, Tag: reflect.StructTag(fmt.Sprintf(`avro:%q`, f.name))}
		}
		return reflect.StructOf(sfs), nil
	case reflect.Pointer:
		e, err := shadowOf(t.Elem())
		if err != nil {
			return nil, err
		}
		if e == t.Elem() {
			return t, nil
		}
		return reflect.PointerTo(e), nil
	case reflect.Slice:
		e, err := shadowOf(t.Elem())
		if err != nil {
			return nil, err
		}
		if e == t.Elem() {
			return t, nil
		}
		return reflect.SliceOf(e), nil
	case reflect.Map:
		e, err := shadowOf(t.Elem())
		if err != nil {
			return nil, err
		}
		if e == t.Elem() {
			return t, nil
		}
		return reflect.MapOf(t.Key(), e), nil
	}
	return t, nil
}

// converter returns a conv from values of type from to values of type to,
// which must be structurally equal (one is the shadow of the other), or nil
// when there is nothing to convert. With nilBytes (the decoding direction),
// zero-length byte slices become nil: Avro cannot tell nil from empty bytes,
// and nil is Go's "no bytes" (see the package documentation).
func converter(from, to reflect.Type, nilBytes bool) conv {
	fix := nilBytes && hasBytes(from)
	if from == to && !fix {
		return nil
	}
	switch from.Kind() {
	case reflect.Struct:
		type pair struct {
			from, to int
			c        conv
		}
		var pairs []pair
		for j := range to.NumField() {
			tf := to.Field(j)
			for i := range from.NumField() {
				ff := from.Field(i)
				if ff.Name == tf.Name && !ff.Anonymous && ff.IsExported() {
					pairs = append(pairs, pair{i, j, converter(ff.Type, tf.Type, nilBytes)})
					break
				}
			}
		}
		return func(v reflect.Value) reflect.Value {
			out := reflect.New(to).Elem()
			for _, p := range pairs {
				f := v.Field(p.from)
				if p.c != nil {
					f = p.c(f)
				}
				out.Field(p.to).Set(f)
			}
			return out
		}
	case reflect.Pointer:
		c := converter(from.Elem(), to.Elem(), nilBytes)
		return func(v reflect.Value) reflect.Value {
			if v.IsNil() {
				return reflect.Zero(to)
			}
			p := reflect.New(to.Elem())
			p.Elem().Set(c(v.Elem()))
			return p
		}
	case reflect.Slice:
		if from.Elem().Kind() == reflect.Uint8 {
			return func(v reflect.Value) reflect.Value {
				if v.Len() == 0 {
					return reflect.Zero(to)
				}
				return v.Convert(to)
			}
		}
		c := converter(from.Elem(), to.Elem(), nilBytes)
		return func(v reflect.Value) reflect.Value {
			if v.IsNil() {
				return reflect.Zero(to)
			}
			n := v.Len()
			out := reflect.MakeSlice(to, n, n)
			for i := range n {
				out.Index(i).Set(c(v.Index(i)))
			}
			return out
		}
	case reflect.Map:
		c := converter(from.Elem(), to.Elem(), nilBytes)
		return func(v reflect.Value) reflect.Value {
			if v.IsNil() {
				return reflect.Zero(to)
			}
			out := reflect.MakeMapWithSize(to, v.Len())
			it := v.MapRange()
			for it.Next() {
				out.SetMapIndex(it.Key(), c(it.Value()))
			}
			return out
		}
	}
	// Unreachable for types from shadowOf: any other kind is its own shadow.
	return func(v reflect.Value) reflect.Value { return v.Convert(to) }
}

// hasBytes reports whether values of t may hold a byte slice.
func hasBytes(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Uint8 || hasBytes(t.Elem())
	case reflect.Pointer, reflect.Map:
		return hasBytes(t.Elem())
	case reflect.Struct:
		if t == timeType {
			return false
		}
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && hasBytes(f.Type) {
				return true
			}
		}
	}
	return false
}
