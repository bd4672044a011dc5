package avro

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	ta "github.com/twmb/avro"
)

// Registry is where codecs register their schemas and look writers' schemas
// up by fingerprint. *schemaregistry.Registry (a compacted Kafka topic) and
// *schemaregistry.Memory (for tests) implement it.
type Registry interface {
	// Register stores a schema (idempotently) and returns its
	// fingerprint; it returns once readers can find it.
	Register(ctx context.Context, schemaJSON string) (fingerprint uint64, err error)
	// Lookup returns the schema of a fingerprint, catching up on the
	// registry first when it is not known yet; for a fingerprint still
	// unknown then, an error wrapping ErrUnknownSchema.
	Lookup(ctx context.Context, fingerprint uint64) (schemaJSON string, err error)
	// All returns every registered schema by fingerprint, after catching
	// up.
	All(ctx context.Context) (map[uint64]string, error)
}

// DefaultLookupTimeout bounds the registry look-up that Decode makes when it
// meets a fingerprint it has not seen before (Decode has no context).
const DefaultLookupTimeout = 10 * time.Second

// member is one Go type a codec encodes and decodes.
type member struct {
	goType     reflect.Type
	typeName   string // Go type name, returned by Encode
	schema     *Schema
	shadow     reflect.Type
	toShadow   conv
	fromShadow conv
}

func newMember(t reflect.Type, namespace string) (*member, error) {
	s, err := schemaOfType(t, namespace)
	if err != nil {
		return nil, err
	}
	sh, err := shadowOf(t)
	if err != nil {
		return nil, fmt.Errorf("avro: %s: %w", t, err)
	}
	return &member{
		goType: t, typeName: t.Name(), schema: s, shadow: sh,
		toShadow: converter(t, sh, false), fromShadow: converter(sh, t, true),
	}, nil
}

// reader is how a codec reads the frames of one writer fingerprint.
type reader struct {
	m   *member
	s   *ta.Schema // the writer's schema resolved against m's
	err error      // permanent failure
}

// core is what Value and Union share.
type core struct {
	what    string // for messages: the Go type or interface
	reg     Registry
	timeout atomic.Int64
	members []*member
	byType  map[reflect.Type]*member
	byName  map[string]*member // by full record name
	readers sync.Map           // fingerprint -> *reader
}

func newCore(what string, reg Registry, members []*member) (*core, error) {
	if reg == nil {
		return nil, errors.New("avro: nil registry")
	}
	c := &core{what: what, reg: reg, members: members, byType: map[reflect.Type]*member{}, byName: map[string]*member{}}
	c.timeout.Store(int64(DefaultLookupTimeout))
	for _, m := range members {
		if _, dup := c.byType[m.goType]; dup {
			return nil, fmt.Errorf("avro: %s: type %s given twice", what, m.goType)
		}
		if prev, dup := c.byName[m.schema.Name()]; dup {
			return nil, fmt.Errorf("avro: %s: types %s and %s are both record %s", what, prev.goType, m.goType, m.schema.Name())
		}
		c.byType[m.goType] = m
		c.byName[m.schema.Name()] = m
		c.readers.Store(m.schema.Fingerprint(), &reader{m: m, s: m.schema.s})
	}
	return c, nil
}

func (c *core) schemas() []*Schema {
	out := make([]*Schema, len(c.members))
	for i, m := range c.members {
		out[i] = m.schema
	}
	return out
}

func (c *core) encode(v reflect.Value, m *member) ([]byte, error) {
	if !m.schema.register.Load() {
		return nil, fmt.Errorf("avro: encode %s: %w: call avro.Register at start-up before writing records", m.schema, ErrNotRegistered)
	}
	if m.toShadow != nil {
		v = m.toShadow(v)
	}
	x := v.Interface()
	if v.CanAddr() {
		x = v.Addr().Interface() // no copy into an interface
	}
	b, err := m.schema.s.AppendSingleObject(make([]byte, 0, 64), x)
	if err != nil {
		return nil, fmt.Errorf("avro: encode %s: %w", m.schema.Name(), err)
	}
	return b, nil
}

// decode decodes a frame into a value of one of the members' Go types.
// Malformed input gives an error, never a panic: a panic of the underlying
// decoder, should one exist, is turned into ErrMalformedBody.
func (c *core) decode(b []byte) (v reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = reflect.Value{}, fmt.Errorf("avro: decode %s: %w: decoder panic: %v", c.what, ErrMalformedBody, r)
		}
	}()
	return c.decodeUnsafe(b)
}

// decodeUnsafe is decode without the recover, for fuzzing.
func (c *core) decodeUnsafe(b []byte) (reflect.Value, error) {
	fp, body, err := ParseFrame(b)
	if err != nil {
		return reflect.Value{}, fmt.Errorf("avro: decode %s: %w", c.what, err)
	}
	r, err := c.reader(fp)
	if err != nil {
		return reflect.Value{}, fmt.Errorf("avro: decode %s: %w", c.what, err)
	}
	p := reflect.New(r.m.shadow)
	rest, err := r.s.Decode(body, p.Interface())
	if err != nil {
		return reflect.Value{}, fmt.Errorf("avro: decode %s: %w: written with schema %s: %w", c.what, ErrMalformedBody, FormatFingerprint(fp), err)
	}
	if len(rest) > 0 {
		return reflect.Value{}, fmt.Errorf("avro: decode %s: %w: %d bytes after the record (schema %s)", c.what, ErrMalformedBody, len(rest), FormatFingerprint(fp))
	}
	v := p.Elem()
	if r.m.fromShadow != nil {
		v = r.m.fromShadow(v)
	}
	return v, nil
}

// reader returns how to read frames written with fingerprint fp, looking
// the writer's schema up in the registry the first time.
func (c *core) reader(fp uint64) (*reader, error) {
	if r, ok := c.readers.Load(fp); ok {
		r := r.(*reader)
		return r, r.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.timeout.Load()))
	defer cancel()
	js, err := c.reg.Lookup(ctx, fp)
	if err != nil {
		if errors.Is(err, ErrUnknownSchema) {
			return nil, fmt.Errorf("schema %s: %w", FormatFingerprint(fp), err)
		}
		return nil, fmt.Errorf("%w: looking up schema %s: %w", ErrRegistryUnavailable, FormatFingerprint(fp), err)
	}
	r := c.resolve(fp, js)
	actual, _ := c.readers.LoadOrStore(fp, r)
	r = actual.(*reader)
	return r, r.err
}

// resolve builds the reader of a writer's schema; failures are permanent,
// for the registry never changes what a fingerprint means.
func (c *core) resolve(fp uint64, writerJSON string) *reader {
	w, err := ParseSchema(writerJSON)
	if err != nil {
		return &reader{err: fmt.Errorf("%w: registry schema %s does not parse: %w", ErrIncompatible, FormatFingerprint(fp), err)}
	}
	if w.Fingerprint() != fp {
		return &reader{err: fmt.Errorf("%w: the registry returned a schema with fingerprint %s for %s", ErrIncompatible, FormatFingerprint(w.Fingerprint()), FormatFingerprint(fp))}
	}
	m, ok := c.byName[w.Name()]
	if !ok {
		return &reader{err: fmt.Errorf("%w: the frame holds %s, which is not among %s", ErrWrongType, w, c.names())}
	}
	if err := checkOne(w, m.schema); err != nil {
		return &reader{err: err}
	}
	s, err := ta.Resolve(w.s, m.schema.s)
	if err != nil {
		return &reader{err: fmt.Errorf("%w: %s cannot be read as %s: %w", ErrIncompatible, w, m.schema, err)}
	}
	return &reader{m: m, s: s}
}

func (c *core) names() string {
	if len(c.members) == 1 {
		return c.members[0].schema.Name()
	}
	s := "{"
	for i, m := range c.members {
		if i > 0 {
			s += ", "
		}
		s += m.schema.Name()
	}
	return s + "}"
}

// Value is the codec of one Go struct type T, one Avro record. Build one with
// NewValue. It is safe for concurrent use.
type Value[T any] struct {
	c *core
	m *member
}

// NewValue returns the codec of T, whose record is named after T in
// namespace (such as "catalog.author": "catalog.author.State"). Register
// its schema before encoding.
func NewValue[T any](reg Registry, namespace string) (*Value[T], error) {
	t := reflect.TypeFor[T]()
	m, err := newMember(t, namespace)
	if err != nil {
		return nil, err
	}
	c, err := newCore(t.String(), reg, []*member{m})
	if err != nil {
		return nil, err
	}
	return &Value[T]{c: c, m: m}, nil
}

// Encode implements es.Codec: a single-object frame, and T's Go type name.
func (v *Value[T]) Encode(x T) ([]byte, string, error) {
	b, err := v.c.encode(reflect.ValueOf(&x).Elem(), v.m)
	return b, v.m.typeName, err
}

// Decode implements es.Codec: it reads a frame written with any registered
// version of T's schema.
func (v *Value[T]) Decode(b []byte) (T, error) {
	var zero T
	rv, err := v.c.decode(b)
	if err != nil {
		return zero, err
	}
	return rv.Interface().(T), nil
}

// Schema returns T's schema.
func (v *Value[T]) Schema() *Schema { return v.m.schema }

// Schemas implements Registrant.
func (v *Value[T]) Schemas() []*Schema { return v.c.schemas() }

// Registry implements Registrant.
func (v *Value[T]) Registry() Registry { return v.c.reg }

// SetLookupTimeout bounds the registry look-up of an unknown fingerprint
// during Decode (DefaultLookupTimeout unless set).
func (v *Value[T]) SetLookupTimeout(d time.Duration) { v.c.timeout.Store(int64(d)) }

// Union is the codec of the concrete struct types behind the interface I,
// one Avro record each; the frame's fingerprint tells which. Build one with
// NewUnion. It is safe for concurrent use.
type Union[I any] struct {
	c *core
}

// NewUnion returns the codec of the given concrete values of I (struct
// types; only their types matter), each a record named after its Go type in
// namespace (such as "catalog.author": "catalog.author.AuthorCreated").
// Register its schemas before encoding.
func NewUnion[I any](reg Registry, namespace string, members ...I) (*Union[I], error) {
	what := reflect.TypeFor[I]().String()
	if len(members) == 0 {
		return nil, fmt.Errorf("avro: union %s: no members", what)
	}
	ms := make([]*member, 0, len(members))
	for _, x := range members {
		t := reflect.TypeOf(x)
		if t == nil {
			return nil, fmt.Errorf("avro: union %s: nil member", what)
		}
		m, err := newMember(t, namespace)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	c, err := newCore(what, reg, ms)
	if err != nil {
		return nil, err
	}
	return &Union[I]{c: c}, nil
}

// Encode implements es.Codec: a single-object frame of v's concrete type, and
// that type's Go name (such as "AuthorCreated").
func (u *Union[I]) Encode(v I) ([]byte, string, error) {
	rv := reflect.ValueOf(&v).Elem()
	if rv.Kind() == reflect.Interface {
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil, "", fmt.Errorf("avro: encode %s: nil value", u.c.what)
	}
	m, ok := u.c.byType[rv.Type()]
	if !ok {
		return nil, "", fmt.Errorf("avro: encode %s: type %s is not a member of the union", u.c.what, rv.Type())
	}
	b, err := u.c.encode(rv, m)
	return b, m.typeName, err
}

// Decode implements es.Codec.
func (u *Union[I]) Decode(b []byte) (I, error) {
	var zero I
	rv, err := u.c.decode(b)
	if err != nil {
		return zero, err
	}
	x, ok := rv.Interface().(I)
	if !ok {
		return zero, fmt.Errorf("avro: decode %s: %s does not implement it", u.c.what, rv.Type())
	}
	return x, nil
}

// Names returns the Go type names of the members.
func (u *Union[I]) Names() []string {
	out := make([]string, len(u.c.members))
	for i, m := range u.c.members {
		out[i] = m.typeName
	}
	return out
}

// Schemas implements Registrant.
func (u *Union[I]) Schemas() []*Schema { return u.c.schemas() }

// Registry implements Registrant.
func (u *Union[I]) Registry() Registry { return u.c.reg }

// SetLookupTimeout bounds the registry look-up of an unknown fingerprint
// during Decode (DefaultLookupTimeout unless set).
func (u *Union[I]) SetLookupTimeout(d time.Duration) { u.c.timeout.Store(int64(d)) }

// Registrant is a codec whose schemas must be registered before it encodes.
type Registrant interface {
	Schemas() []*Schema
	Registry() Registry
}

// Register prepares codecs for writing, at start-up: it checks each schema
// against the versions of the same record already in the codec's registry
// (see CheckCompatible) and refuses, naming every incompatible type and
// field, when one would break the reading of records already written; then
// it registers every schema (idempotently), so that each schema is in the
// registry before the first record that uses it. A codec's Encode fails
// with ErrNotRegistered until Register succeeded for it.
func Register(ctx context.Context, codecs ...Registrant) error {
	type group struct {
		reg     Registry
		schemas []*Schema
	}
	var groups []*group
	for _, c := range codecs {
		reg := c.Registry()
		var g *group
		for _, x := range groups {
			if sameRegistry(x.reg, reg) {
				g = x
			}
		}
		if g == nil {
			g = &group{reg: reg}
			groups = append(groups, g)
		}
		g.schemas = append(g.schemas, c.Schemas()...)
	}
	for _, g := range groups {
		all, err := g.reg.All(ctx)
		if err != nil {
			return fmt.Errorf("avro: register: read registry: %w", err)
		}
		registered := make([]*Schema, 0, len(all))
		for fp, js := range all {
			s, err := ParseSchema(js)
			if err != nil {
				return fmt.Errorf("avro: register: registry schema %s: %w", FormatFingerprint(fp), err)
			}
			registered = append(registered, s)
		}
		var errs []error
		for _, s := range g.schemas {
			if err := CheckCompatible(registered, s); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("avro: refusing to register incompatible schemas: %w", errors.Join(errs...))
		}
		for _, s := range g.schemas {
			fp, err := g.reg.Register(ctx, s.JSON())
			if err != nil {
				return fmt.Errorf("avro: register %s: %w", s, err)
			}
			if fp != s.Fingerprint() {
				return fmt.Errorf("avro: register %s: registry computed fingerprint %s", s, FormatFingerprint(fp))
			}
			s.register.Store(true)
		}
	}
	return nil
}

// sameRegistry reports whether a and b are the same registry, without
// panicking on a registry type that is not comparable.
func sameRegistry(a, b Registry) bool {
	at, bt := reflect.TypeOf(a), reflect.TypeOf(b)
	return at == bt && at != nil && at.Comparable() && a == b
}
