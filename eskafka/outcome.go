package eskafka

import (
	"github.com/bookscatalog/catalog/codec/jsoncodec"
	"github.com/bookscatalog/catalog/es"
)

// Outcome statuses.
const (
	StatusAccepted = "accepted"
	StatusRejected = "rejected"
)

// Outcome is what became of one command: its events and the new state when
// accepted, or the rejection. It is the value of a results record.
type Outcome struct {
	MsgID  string `json:"msgId" avro:"msgId"`
	Key    string `json:"key" avro:"key"`
	Status string `json:"status" avro:"status"`
	// Version is the aggregate's version after the command (accepted) or
	// as the command found it (rejected).
	Version int64 `json:"version" avro:"version"`
	// Events are the encoded events, in order.
	Events []EncodedEvent `json:"events,omitempty" avro:"events"`
	// State is the encoded state after the command; nil when the
	// aggregate does not exist.
	State     []byte        `json:"state,omitempty" avro:"state"`
	Rejection *es.Rejection `json:"error,omitempty" avro:"error"`
}

// EncodedEvent is one event of an outcome, as its codec wrote it.
type EncodedEvent struct {
	Type string `json:"type" avro:"type"`
	Data []byte `json:"data" avro:"data"`
}

// Accepted reports whether the command was accepted.
func (o *Outcome) Accepted() bool { return o.Status == StatusAccepted }

// DefaultOutcomeCodec encodes outcomes as JSON.
func DefaultOutcomeCodec() es.Codec[Outcome] { return jsoncodec.Value[Outcome]{Name: "Outcome"} }
