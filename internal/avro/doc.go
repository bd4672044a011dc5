// Package avro encodes the records of the catalog's Kafka topics as Avro,
// framed with the Avro specification's single-object encoding, and decodes
// them with Avro schema resolution against a schema registry (see package
// schemaregistry). docs/wire-format.md describes the bytes for other teams.
//
// # Codecs
//
// Value[T] is the codec of one Go struct type (an aggregate state, an
// outcome); Union[I] is the codec of the concrete types behind an interface
// (commands, events), one record each, told apart by the frame's schema
// fingerprint. Both implement es.Codec and mirror package jsoncodec:
//
//	reg := ... // a *schemaregistry.Registry, or schemaregistry.NewMemory()
//	state, err := avro.NewValue[author.State](reg, "catalog.author")
//	cmds, err := avro.NewUnion[author.Command](reg, "catalog.author",
//		author.CreateAuthor{}, author.UpdateAuthor{}, author.DeleteAuthor{})
//	events, err := avro.NewUnion[author.Event](reg, "catalog.author",
//		author.AuthorCreated{}, author.AuthorUpdated{}, author.AuthorDeleted{})
//	err = avro.Register(ctx, state, cmds, events) // at start-up, before writing
//
// Register checks each schema against the versions of the same record that
// the registry already holds (CheckCompatible) and refuses an incompatible
// change, then registers the schemas, so that every schema is in the registry
// before the first record that uses it; Encode fails with ErrNotRegistered
// before that.
//
// Decode takes the writer's fingerprint from the frame. For the codec's own
// schema it decodes directly; for another one it looks the writer's schema up
// in the registry (which catches up on its topic when the fingerprint is new
// to it, and fails with ErrUnknownSchema when it is still unknown: it never
// guesses), resolves it against the reader's schema (Avro schema resolution:
// fields added with a default are filled in, removed fields skipped, ints
// promoted) and caches the result. Decode has no context, so that look-up is
// bounded by DefaultLookupTimeout (10 s; SetLookupTimeout changes it); an
// error wrapping ErrRegistryUnavailable is the only one worth retrying.
// Malformed input gives an error, never a panic.
//
// # Schemas from Go types
//
// The Go types are the single source of truth: each record schema is derived
// from its struct type by reflection (SchemaOf), no .avsc files are kept.
// The record is named after the Go type, in the namespace the caller gives.
// A field's Avro name is the name of its avro tag, else of its json tag, else
// the Go field name; fields tagged json:"-" or avro:"-" and unexported
// fields are left out. Types map as github.com/twmb/avro's SchemaFor maps
// them:
//
//	bool                      boolean
//	int8, int16, int32,
//	uint8, uint16             int
//	int, int64, uint32        long
//	float32, float64          float, double
//	string                    string
//	[]byte                    bytes
//	[]T                       array of T
//	map[string]T              map of T
//	*T                        ["null", T] with default null
//	struct type S             record S (in the same namespace)
//	time.Time                 long, logical type timestamp-millis
//
// Options in the avro tag, after the name: default=<JSON value> gives the
// field a default (it must come last; a value that is not JSON is taken as a
// string, so `avro:",default="` is the empty string), alias=<old name> lets
// the field read a renamed writer field, timestamp-micros or timestamp-millis
// chooses a time.Time's logical type. A field added to a type needs a
// default, or Register refuses it:
//
//	type AuthorCreated struct {
//		Code      string `json:"code"`
//		FirstName string `json:"firstName"`
//		LastName  string `json:"lastName"`
//		Country   string `json:"country" avro:",default=unknown"`
//	}
//
// Interfaces, embedded structs, recursive types, other map keys and unsigned
// 64-bit integers are refused when the codec is built.
package avro
