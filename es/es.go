// Package es is the generic model of event sourcing that the runtime
// executes: an aggregate is a pair of pure functions, decide and evolve, plus
// what the runtime must know to key, version and name its values. It knows
// nothing of any particular domain and nothing of Kafka.
package es

import (
	"errors"
	"fmt"
)

// Aggregate describes one aggregate type to the runtime. S is its state, C
// its commands and E its events. Every function must be pure.
type Aggregate[S, C, E any] struct {
	// Name is the plural noun used in topic names and URLs, e.g. "accounts".
	Name string
	// Decide returns the events a command causes, or a rejection (an
	// error; see Rejection). It must not mutate its arguments.
	Decide func(state S, cmd C) ([]E, error)
	// Evolve folds one event into the state.
	Evolve func(state S, ev E) S
	// Key returns the aggregate id a command is about.
	Key func(cmd C) string
	// Version is the number of events applied to the state.
	Version func(state S) int64
	// Exists reports whether the state is alive; a state that does not
	// exist is written to the changelog as a tombstone.
	Exists func(state S) bool
	// Identity, when set, returns what tells a retry of a command from
	// another command sent under the same idempotency key: the command
	// without what the service filled in before sending it (such as what
	// a check of another aggregate found, which may differ between the
	// tries). Nil: the whole command.
	Identity func(cmd C) C
}

// Rejection codes the runtime itself produces. Domain codes pass through.
const (
	// CodeVersionMismatch: the command's expected version is not the
	// aggregate's current version (optimistic concurrency).
	CodeVersionMismatch = "version_mismatch"
	// CodeMalformedCommand: the command record could not be decoded.
	CodeMalformedCommand = "malformed_command"
	// CodeInternal: the command could not be processed for a reason that
	// is not the writer's fault.
	CodeInternal = "internal"
	// CodeTooLarge: what the command would write (an event, the new
	// state or the outcome) does not fit a Kafka record of its topic.
	CodeTooLarge = "too_large"
	// CodeCorruptState: the aggregate's stored state cannot be decoded;
	// the key is quarantined until an operator repairs it.
	CodeCorruptState = "corrupt_state"
	// CodeIdempotencyKeyReused: the command's idempotency key (its
	// msgId) was used before for a different command.
	CodeIdempotencyKeyReused = "idempotency_key_reused"
	// CodeNotRecorded: the command was sent only to be answered with the
	// outcome recorded under its idempotency key (a retry that the
	// sender's own checks would now refuse), and none is: nothing was
	// applied, and nothing is recorded.
	CodeNotRecorded = "not_recorded"
)

// Rejection codes most domains need, named once so that adapters (the HTTP
// layer maps them to 404, 409 and 422) know them without knowing the
// domain. A domain may use its own codes beside them.
const (
	// CodeNotFound: the aggregate is missing or was deleted.
	CodeNotFound = "not_found"
	// CodeAlreadyExists: the aggregate to create exists already.
	CodeAlreadyExists = "already_exists"
	// CodeInvalid: a field of the command breaks a rule; Field names it.
	CodeInvalid = "invalid"
)

// Rejection is a refused command: what a domain's decide returns as its
// error, and what the runtime records in the command's outcome. It is an
// outcome, not an event: it changes no state. Code is one of the runtime's
// Code* constants above or a code of the domain (which declares its own,
// such as "not_found"); the HTTP layer maps codes to status codes.
type Rejection struct {
	// Code says what kind of refusal this is.
	Code string `json:"code" avro:"code"`
	// Field names the offending field of the command, if there is one.
	Field string `json:"field,omitempty" avro:"field"`
	// Message says what is wrong in words a writer understands.
	Message string `json:"message" avro:"message"`
}

// Reject returns a rejection with code about field ("" when it is about
// no field in particular), its message formatted as by fmt.Sprintf.
func Reject(code, field, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (r *Rejection) Error() string {
	if r.Field != "" {
		return r.Code + ": " + r.Field + ": " + r.Message
	}
	return r.Code + ": " + r.Message
}

// AsRejection converts a decide error into a Rejection. A *Rejection (also
// wrapped) is itself; an error of another type with a RejectionCode method
// (and optionally RejectionField and RejectionMessage) is converted, for
// domains that keep an error type of their own; any other error is an
// internal failure.
func AsRejection(err error) *Rejection {
	if rej, ok := errors.AsType[*Rejection](err); ok && rej != nil {
		c := *rej
		return &c
	}
	var coded interface{ RejectionCode() string }
	if !errors.As(err, &coded) {
		return &Rejection{Code: CodeInternal, Message: err.Error()}
	}
	r := &Rejection{Code: coded.RejectionCode(), Message: err.Error()}
	var fielded interface{ RejectionField() string }
	if errors.As(err, &fielded) {
		r.Field = fielded.RejectionField()
	}
	if m, ok := err.(interface{ RejectionMessage() string }); ok {
		r.Message = m.RejectionMessage()
	}
	return r
}

// Handle runs one command against a state: it checks the expected version
// (when not nil), decides, and folds the events. It returns the new state
// and events, or a rejection with the state unchanged.
func (a Aggregate[S, C, E]) Handle(state S, cmd C, expectedVersion *int64) (S, []E, *Rejection) {
	if expectedVersion != nil {
		if v := a.Version(state); v != *expectedVersion {
			return state, nil, &Rejection{
				Code:    CodeVersionMismatch,
				Message: fmt.Sprintf("%s %q is at version %d, not the expected %d", a.Name, a.Key(cmd), v, *expectedVersion),
			}
		}
	}
	events, err := a.Decide(state, cmd)
	if err != nil {
		return state, nil, AsRejection(err)
	}
	for _, e := range events {
		state = a.Evolve(state, e)
	}
	return state, events, nil
}

// Codec turns values into record bytes and back. Implementations must be
// safe for concurrent use.
type Codec[T any] interface {
	// Encode returns the bytes of v and the name of its type (for a
	// union such as a command interface, the concrete type's name).
	Encode(v T) (b []byte, typeName string, err error)
	// Decode parses bytes written by Encode.
	Decode(b []byte) (T, error)
}

// Codecs are the three codecs an aggregate's records need.
type Codecs[S, C, E any] struct {
	State   Codec[S]
	Command Codec[C]
	Event   Codec[E]
}
