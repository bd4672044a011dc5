package avro

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
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

// member is a Member with its schema.
type member struct {
	Member
	schema *Schema
}

// reader is how a codec reads the frames of one writer fingerprint.
type reader struct {
	m   *member
	s   *ta.Schema // the writer's schema resolved against m's
	err error      // permanent failure
	// size is what the cache counts the reader at: the writer schema's
	// JSON, which a resolved schema holds the whole of.
	size int
}

// maxCachedWriters and maxCachedWriterBytes bound the writer schemas other
// than its own that a codec keeps resolved (or refused), in number and in
// the size of their JSON: a record names its writer's fingerprint, and
// whoever can write the registry topic and a topic the service reads could
// otherwise make every codec keep one more schema per record, for good, of
// up to a registry record's size. A service meets a few versions of each
// of its types; a schema evicted is looked up and resolved again when next
// met.
const (
	maxCachedWriters     = 1024
	maxCachedWriterBytes = 16 << 20
)

// core is what Value and Union share.
type core struct {
	what    string // for messages: the Go type or interface
	reg     Registry
	timeout atomic.Int64
	members []*member
	// own holds the readers of the members' schemas, written only while
	// the codec is built.
	own map[uint64]*reader

	mu sync.RWMutex
	// writers holds the readers of the other writer schemas met, at
	// most maxCachedWriters of them and maxCachedWriterBytes in all
	// (writerBytes).
	writers     map[uint64]*reader
	writerBytes int
}

func newCore(what string, reg Registry, namespace string, members []Member) (*core, error) {
	if reg == nil {
		return nil, errors.New("avro: nil registry")
	}
	c := &core{what: what, reg: reg, own: map[uint64]*reader{}, writers: map[uint64]*reader{}}
	c.timeout.Store(int64(DefaultLookupTimeout))
	for _, m := range members {
		s, err := m.schema(namespace)
		if err != nil {
			return nil, fmt.Errorf("avro: schema of %s: %w", m.t, err)
		}
		mm := &member{Member: m, schema: newSchema(s)}
		for _, prev := range c.members {
			if prev.schema.Name() == mm.schema.Name() {
				return nil, fmt.Errorf("avro: %s: types %s and %s are both record %s", what, prev.t, m.t, mm.schema.Name())
			}
		}
		c.members = append(c.members, mm)
		c.own[mm.schema.Fingerprint()] = &reader{m: mm, s: s}
	}
	return c, nil
}

// Schemas implements Registrant.
func (c *core) Schemas() []*Schema {
	out := make([]*Schema, len(c.members))
	for i, m := range c.members {
		out[i] = m.schema
	}
	return out
}

// Registry implements Registrant.
func (c *core) Registry() Registry { return c.reg }

// SetLookupTimeout bounds the registry look-up of an unknown fingerprint
// during Decode (DefaultLookupTimeout unless set).
func (c *core) SetLookupTimeout(d time.Duration) { c.timeout.Store(int64(d)) }

func (c *core) encode(v any, m *member) ([]byte, error) {
	if !m.schema.registered.Load() {
		return nil, fmt.Errorf("avro: encode %s: %w: call avro.Register at start-up before writing records", m.schema, ErrNotRegistered)
	}
	b, err := m.schema.s.AppendSingleObject(make([]byte, 0, 128), v)
	if err != nil {
		return nil, fmt.Errorf("avro: encode %s: %w", m.schema.Name(), err)
	}
	return b, nil
}

// decode decodes a frame with dec, which decodes a body with the reader of
// its writer's fingerprint. Malformed input gives an error, never a panic:
// a panic of the library's decoder, should one exist, becomes
// ErrMalformedBody (unless recovering is false, for fuzzing).
func decode[T any](c *core, b []byte, recovering bool, dec func(*reader, []byte) (T, []byte, error)) (v T, err error) {
	if recovering {
		defer func() {
			if r := recover(); r != nil {
				var zero T
				v, err = zero, fmt.Errorf("avro: decode %s: %w: decoder panic: %v", c.what, ErrMalformedBody, r)
			}
		}()
	}
	fp, body, err := ParseFrame(b)
	if err != nil {
		return v, fmt.Errorf("avro: decode %s: %w", c.what, err)
	}
	r, err := c.reader(fp)
	if err != nil {
		return v, fmt.Errorf("avro: decode %s: %w", c.what, err)
	}
	v, rest, err := dec(r, body)
	if err != nil {
		return v, fmt.Errorf("avro: decode %s: %w: written with schema %s: %w", c.what, ErrMalformedBody, FormatFingerprint(fp), err)
	}
	if len(rest) > 0 {
		return v, fmt.Errorf("avro: decode %s: %w: %d bytes after the record (schema %s)", c.what, ErrMalformedBody, len(rest), FormatFingerprint(fp))
	}
	return v, nil
}

// reader returns how to read frames written with fingerprint fp, looking
// the writer's schema up in the registry the first time (and again once it
// was evicted from the cache).
func (c *core) reader(fp uint64) (*reader, error) {
	if r, ok := c.own[fp]; ok {
		return r, r.err
	}
	c.mu.RLock()
	r, ok := c.writers[fp]
	c.mu.RUnlock()
	if ok {
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
	r = c.resolve(fp, js)
	r.size = len(js)
	c.mu.Lock()
	defer c.mu.Unlock()
	if have, ok := c.writers[fp]; ok {
		return have, have.err // resolved meanwhile by another decode
	}
	for k, old := range c.writers { // any: it is looked up again if met
		if len(c.writers) < maxCachedWriters && c.writerBytes+r.size <= maxCachedWriterBytes {
			break
		}
		delete(c.writers, k)
		c.writerBytes -= old.size
	}
	c.writers[fp] = r
	c.writerBytes += r.size
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
	var names []string
	for _, m := range c.members {
		if m.schema.Name() != w.Name() {
			names = append(names, m.schema.Name())
			continue
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
	return &reader{err: fmt.Errorf("%w: the frame holds %s, which is not among {%s}", ErrWrongType, w, strings.Join(names, ", "))}
}

// Value is the codec of one Go struct type T, one Avro record. Build one with
// NewValue. It is safe for concurrent use.
type Value[T any] struct {
	*core
}

// NewValue returns the codec of T, whose record is named after T in
// namespace (such as "bank.account": "bank.account.State"). Register
// its schema before encoding.
func NewValue[T any](reg Registry, namespace string) (*Value[T], error) {
	c, err := newCore(reflect.TypeFor[T]().String(), reg, namespace, []Member{Of[T]()})
	if err != nil {
		return nil, err
	}
	return &Value[T]{c}, nil
}

// Encode implements es.Codec: a single-object frame, and T's Go type name.
func (v *Value[T]) Encode(x T) ([]byte, string, error) {
	m := v.members[0]
	b, err := v.encode(&x, m)
	return b, m.t.Name(), err
}

// Decode implements es.Codec: it reads a frame written with any registered
// version of T's schema.
func (v *Value[T]) Decode(b []byte) (T, error) { return v.decode(b, true) }

func (v *Value[T]) decode(b []byte, recovering bool) (T, error) {
	return decode(v.core, b, recovering, func(r *reader, body []byte) (x T, rest []byte, err error) {
		rest, err = r.s.Decode(body, &x)
		return x, rest, err
	})
}

// Schema returns T's schema.
func (v *Value[T]) Schema() *Schema { return v.members[0].schema }

// Union is the codec of the concrete struct types behind the interface I,
// one Avro record each; the frame's fingerprint tells which. Build one with
// NewUnion. It is safe for concurrent use.
type Union[I any] struct {
	*core
	byType map[reflect.Type]*member
}

// NewUnion returns the codec of the given members of I (Of[T] for each
// concrete type T), each a record named after its Go type in namespace
// (such as "bank.account": "bank.account.Deposited"). Register its
// schemas before encoding.
func NewUnion[I any](reg Registry, namespace string, members ...Member) (*Union[I], error) {
	iface := reflect.TypeFor[I]()
	if len(members) == 0 {
		return nil, fmt.Errorf("avro: union %s: no members", iface)
	}
	for i, m := range members {
		if m.t == nil {
			return nil, fmt.Errorf("avro: union %s: a zero Member (use avro.Of)", iface)
		}
		if !m.t.Implements(iface) {
			return nil, fmt.Errorf("avro: union %s: %s does not implement it", iface, m.t)
		}
		if slices.ContainsFunc(members[:i], func(p Member) bool { return p.t == m.t }) {
			return nil, fmt.Errorf("avro: union %s: type %s given twice", iface, m.t)
		}
	}
	c, err := newCore(iface.String(), reg, namespace, members)
	if err != nil {
		return nil, err
	}
	u := &Union[I]{c, map[reflect.Type]*member{}}
	for _, m := range c.members {
		u.byType[m.t] = m
	}
	return u, nil
}

// Encode implements es.Codec: a single-object frame of v's concrete type, and
// that type's Go name (such as "Deposited").
func (u *Union[I]) Encode(v I) ([]byte, string, error) {
	t := reflect.TypeOf(any(v))
	if t == nil {
		return nil, "", fmt.Errorf("avro: encode %s: nil value", u.what)
	}
	m, ok := u.byType[t]
	if !ok {
		return nil, "", fmt.Errorf("avro: encode %s: type %s is not a member of the union", u.what, t)
	}
	b, err := u.encode(v, m)
	return b, m.t.Name(), err
}

// Decode implements es.Codec.
func (u *Union[I]) Decode(b []byte) (I, error) { return u.decode(b, true) }

func (u *Union[I]) decode(b []byte, recovering bool) (I, error) {
	return decode(u.core, b, recovering, func(r *reader, body []byte) (I, []byte, error) {
		x, rest, err := r.m.decode(r.s, body)
		v, _ := x.(I) // NewUnion checked that every member implements I
		return v, rest, err
	})
}

// CheckMembers returns an error unless the union's members are exactly the
// concrete types of values, naming every type missing on either side. A
// domain package declares the list of its commands (or events) once, as
// values; the union cannot be built from that list, for the library derives
// schemas from type parameters (Of[T]), so whoever builds it checks the two
// here, and a type added to the domain cannot be forgotten in the codec.
func (u *Union[I]) CheckMembers(values []I) error {
	var problems []string
	declared := map[reflect.Type]bool{}
	for _, v := range values {
		t := reflect.TypeOf(any(v))
		if t == nil {
			problems = append(problems, "a nil value is declared")
			continue
		}
		declared[t] = true
		if _, ok := u.byType[t]; !ok {
			problems = append(problems, fmt.Sprintf("%s is declared but not a member (add avro.Of[%s]())", t, t))
		}
	}
	for _, m := range u.members {
		if !declared[m.t] {
			problems = append(problems, fmt.Sprintf("%s is a member but not declared", m.t))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("avro: union %s: %s", u.what, strings.Join(problems, "; "))
	}
	return nil
}

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
		i := slices.IndexFunc(groups, func(g *group) bool { return sameRegistry(g.reg, c.Registry()) })
		if i < 0 {
			i = len(groups)
			groups = append(groups, &group{reg: c.Registry()})
		}
		groups[i].schemas = append(groups[i].schemas, c.Schemas()...)
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
			errs = append(errs, CheckCompatible(registered, s))
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("avro: refusing to register incompatible schemas: %w", err)
		}
		for _, s := range g.schemas {
			fp, err := g.reg.Register(ctx, s.JSON())
			if err != nil {
				return fmt.Errorf("avro: register %s: %w", s, err)
			}
			if fp != s.Fingerprint() {
				return fmt.Errorf("avro: register %s: registry computed fingerprint %s", s, FormatFingerprint(fp))
			}
			s.registered.Store(true)
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
