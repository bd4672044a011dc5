// Package avro encodes the records of an application's Kafka topics as Avro
// with github.com/twmb/avro, and adds what that library leaves to its user:
// the single-object frame tied to a schema registry (see package
// schemaregistry), one codec for the several record types of a topic told
// apart by the frame's fingerprint, and registration with a compatibility
// check at start-up. docs/wire-format.md describes the bytes for other teams.
//
// Value[T] is the codec of one struct type (an aggregate state, an
// outcome); Union[I] is the codec of the struct types behind an interface
// (commands, events), one record each. Both implement es.Codec:
//
//	reg := ... // a *schemaregistry.Registry, or schemaregistry.NewMemory()
//	state, err := avro.NewValue[account.State](reg, "bank.account")
//	events, err := avro.NewUnion[account.Event](reg, "bank.account",
//		avro.Of[account.Opened](), avro.Of[account.Deposited](), avro.Of[account.Withdrawn]())
//	err = events.CheckMembers(account.Events()) // the domain's own list of its events
//	err = avro.Register(ctx, state, events)     // at start-up, before writing
//
// Schemas come from the Go types by the library's SchemaFor: the record is
// named after the type in the namespace given, fields after their avro
// tags (see the library's documentation for the type mapping and the tag
// options default=, alias=, timestamp-micros…). A field added to a type
// needs a default, or Register refuses it:
//
//	Country string `json:"country" avro:"country,default=unknown"`
//
// Register checks each schema against every version of the same record in
// the registry (CheckCompatible: the library's check, plus logical types,
// told in the words of the change and with the command that removes a
// registered schema that is the mistake), then registers them; Encode fails
// with ErrNotRegistered before that.
//
// Decode takes the writer's fingerprint from the frame. A codec's own
// schema decodes directly; another is looked up in the registry (which
// catches up on its topic, and fails with ErrUnknownSchema for a
// fingerprint still unknown: it never guesses), resolved against the
// codec's schema by the library, and cached. Decode has no context, so the
// look-up is bounded by DefaultLookupTimeout (SetLookupTimeout changes it);
// an error wrapping ErrRegistryUnavailable is the only one worth retrying.
// Malformed input gives an error, never a panic. Empty bytes decode as nil.
package avro
