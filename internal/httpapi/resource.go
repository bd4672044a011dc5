package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/bookscatalog/catalog/internal/auth"
	"github.com/bookscatalog/catalog/internal/codec/jsoncodec"
	"github.com/bookscatalog/catalog/internal/domain"
	"github.com/bookscatalog/catalog/internal/es"
	"github.com/bookscatalog/catalog/internal/eskafka"
	"github.com/bookscatalog/catalog/internal/ids"
)

// Writer sends an aggregate's commands and returns their outcomes
// (eskafka.Gateway implements it).
type Writer[S, C, E any] interface {
	Send(ctx context.Context, cmd C, opt eskafka.SendOptions) error
	Await(ctx context.Context, msgID string) (*eskafka.Result[S, E], error)
	Lookup(msgID string) (*eskafka.Result[S, E], bool, error)
}

// Reader reads an aggregate's states (eskafka.Processor implements it).
type Reader[S any] interface {
	Get(key string) (S, error)
	List(after string, limit int) (items []S, keys []string, partial bool, err error)
}

// Resource is one aggregate type as the HTTP API exposes it.
type Resource[S, C, E any] struct {
	// Name is the collection's path segment, e.g. "authors".
	Name   string
	Writer Writer[S, C, E]
	Reader Reader[S]
	// Commands and Events are the JSON shapes of the CQRS endpoints.
	Commands *jsoncodec.Union[C]
	Events   *jsoncodec.Union[E]
	// Key returns the aggregate id of a command.
	Key func(C) string
	// Version returns a state's version, for ETags.
	Version func(S) int64
	// Render turns a state into its JSON representation.
	Render func(S) any
	// ValidKey reports whether a path key is well-formed (a malformed
	// one is a 400, an unknown one a 404).
	ValidKey func(string) *domain.Rejection
	// WriteTimeout bounds the wait for a command's outcome.
	WriteTimeout time.Duration
	// KeyField is the member of a representation that holds its key.
	KeyField string
	// Ownership and Peers, when set, let any instance answer any read:
	// a key owned elsewhere is forwarded, a list merges all instances.
	Ownership Ownership
	Peers     *Peers
	// Partitions is the partition count, for telling when some
	// partition has no owner.
	Partitions int
	// History, when set, serves GET /{name}/{key}/history and past
	// states (?position=, ?at=).
	History History[S, E]
	// Precheck, when set, vets every command before it is sent, from
	// whichever endpoint (a check the aggregate cannot make itself).
	Precheck func(ctx context.Context, cmd C) *Problem
}

// respond executes cmd and answers with status: the new state's
// representation and ETag, or no body for 204.
func (res *Resource[S, C, E]) respond(w http.ResponseWriter, r *http.Request, status int, cmd C) *Problem {
	result, p := res.execute(w, r, cmd)
	if p != nil {
		return p
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return nil
	}
	res.etag(w, result.State)
	writeJSON(w, status, res.Render(result.State))
	return nil
}

// msgIDFor returns the command's message id: random, or, with an
// Idempotency-Key, derived from it so a retry carries the same id. The id
// also depends on the kind of command, so that a key reused for another
// kind of write (an update, then a delete) is not answered with the first
// write's outcome.
func (res *Resource[S, C, E]) msgIDFor(r *http.Request, key, kind string) (id string, idempotent bool, p *Problem) {
	ik := r.Header.Get("Idempotency-Key")
	if ik == "" {
		return ids.New(), false, nil
	}
	if len(ik) > 255 {
		return "", false, problem(http.StatusBadRequest, "Idempotency-Key must be at most 255 characters")
	}
	return ids.FromName(append([]string{res.Name, key, kind, ik}, idempotencyScope(r)...)...), true, nil
}

// idempotencyScope returns what, besides the Idempotency-Key, tells one
// caller's key from another's: with authentication, the subject, so that
// two callers who happen to pick the same key neither get each other's
// outcomes nor have their writes recorded under the other's name. Without
// authentication there is nobody to tell apart (and ids stay as before).
func idempotencyScope(r *http.Request) []string {
	if p := auth.FromContext(r.Context()); p != nil {
		return []string{"subject", p.Subject}
	}
	return nil
}

// expectedVersion parses If-Match: "<version>" (or a bare number).
func expectedVersion(r *http.Request) (*int64, *Problem) {
	h := r.Header.Get("If-Match")
	if h == "" {
		return nil, nil
	}
	s := strings.TrimPrefix(strings.TrimSpace(h), "W/")
	s = strings.Trim(s, `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return nil, problem(http.StatusBadRequest, `If-Match must be an entity tag of a version, such as "3", not %s`, quoted(h))
	}
	return &v, nil
}

// send checks cmd and sends it with the request's Idempotency-Key and
// If-Match. The key's form is checked before it becomes a record key (a huge
// one would not even fit a record).
func (res *Resource[S, C, E]) send(r *http.Request, cmd C) (msgID string, p *Problem) {
	if rej := res.ValidKey(res.Key(cmd)); rej != nil {
		return "", rejectionProblem(rejection(rej), "")
	}
	if res.Precheck != nil {
		if p := res.Precheck(r.Context(), cmd); p != nil {
			return "", p
		}
	}
	msgID, idem, p := res.msgIDFor(r, res.Key(cmd), fmt.Sprintf("%T", cmd))
	if p != nil {
		return "", p
	}
	ev, p := expectedVersion(r)
	if p != nil {
		return "", p
	}
	opt := eskafka.SendOptions{MsgID: msgID, ExpectedVersion: ev, Idempotent: idem}
	if p := auth.FromContext(r.Context()); p != nil {
		// Who sent it, recorded on the command and its events.
		opt.Subject = p.Subject
	}
	// Sending waits no longer than the whole write may: Kafka being away
	// must not hold the request (and its connection) indefinitely.
	sctx, cancel := context.WithTimeout(r.Context(), res.WriteTimeout)
	defer cancel()
	if err := res.Writer.Send(sctx, cmd, opt); err != nil {
		if errors.Is(err, eskafka.ErrSendUnconfirmed) {
			p := problem(http.StatusGatewayTimeout, "Kafka did not confirm the command within %s; it may still be applied: look it up at /%s/commands/%s, or send it again with the same Idempotency-Key", res.WriteTimeout, res.Name, msgID)
			p.MsgID = msgID
			return "", p
		}
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
			// Bad input, not a failure: the body fits MaxBodyBytes but
			// the command does not fit a Kafka record.
			return "", problem(http.StatusRequestEntityTooLarge, "the command is too large to be written to Kafka: %v", err)
		}
		return "", problem(http.StatusServiceUnavailable, "the command could not be written to Kafka: %v", err)
	}
	return msgID, nil
}

// execute sends cmd, waits for its outcome, and returns the result of an
// accepted command or the problem of a rejected one.
func (res *Resource[S, C, E]) execute(w http.ResponseWriter, r *http.Request, cmd C) (*eskafka.Result[S, E], *Problem) {
	msgID, p := res.send(r, cmd)
	if p != nil {
		return nil, p
	}
	allowWait(w, res.WriteTimeout)
	ctx, cancel := context.WithTimeout(r.Context(), res.WriteTimeout)
	defer cancel()
	result, err := res.Writer.Await(ctx, msgID)
	if err != nil {
		p := problem(http.StatusGatewayTimeout, "the command was accepted for processing but its outcome did not arrive within %s; look it up at /%s/commands/%s", res.WriteTimeout, res.Name, msgID)
		p.MsgID = msgID
		return nil, p
	}
	if !result.Accepted() {
		return nil, rejectionProblem(result.Rejection, msgID)
	}
	return result, nil
}

// writeMargin is how long a response may take to write after a handler's
// deliberate wait.
const writeMargin = 10 * time.Second

// allowWait moves the response's write deadline (the server's
// WriteTimeout, counted from the request's headers) to d plus writeMargin
// from now, for a handler about to wait up to d on purpose: the answer
// after the wait, even a 504, must still reach the client. The deadline
// stays finite. Writers without deadlines (tests' recorders) are left as
// they are.
func allowWait(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + writeMargin))
}

// rejection converts a domain rejection for rejectionProblem.
func rejection(r *domain.Rejection) *es.Rejection {
	return &es.Rejection{Code: r.Code, Field: r.Field, Message: r.Message}
}

// rejectionProblem maps a rejection code to its HTTP status; a code it
// does not know is the writer's problem (422).
func rejectionProblem(rej *es.Rejection, msgID string) *Problem {
	status := http.StatusUnprocessableEntity
	switch rej.Code {
	case domain.CodeNotFound:
		status = http.StatusNotFound
	case domain.CodeAlreadyExists:
		status = http.StatusConflict
	case domain.CodeInvalid, domain.CodeUnknownReference, domain.CodeTooLarge, es.CodeIdempotencyKeyReused:
		// Well-formed, but not to be applied as sent: a field breaks a
		// rule, names nothing, would make the aggregate too large, or
		// the Idempotency-Key names an earlier write with another body.
		status = http.StatusUnprocessableEntity
	case es.CodeVersionMismatch:
		status = http.StatusPreconditionFailed
	case es.CodeMalformedCommand:
		status = http.StatusBadRequest
	case es.CodeInternal:
		status = http.StatusInternalServerError
	case es.CodeCorruptState:
		// The stored state cannot be read: the service's fault, and
		// the key is quarantined until an operator repairs it.
		status = http.StatusInternalServerError
	}
	p := problem(status, "%s", rej.Message)
	p.Code, p.Field, p.MsgID = rej.Code, rej.Field, msgID
	return p
}

func (res *Resource[S, C, E]) etag(w http.ResponseWriter, s S) {
	w.Header().Set("ETag", fmt.Sprintf(`"%d"`, res.Version(s)))
}

// pathKey returns the {key} path value, checked for form.
func (res *Resource[S, C, E]) pathKey(r *http.Request, name string) (string, *Problem) {
	k := r.PathValue(name)
	if rej := res.ValidKey(k); rej != nil {
		p := problem(http.StatusBadRequest, "malformed %s in path: %s", name, rej.Message)
		p.Field = name
		return "", p
	}
	return k, nil
}

// getOne serves GET /{name}/{key}.
func (res *Resource[S, C, E]) getOne(keyName string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k, p := res.pathKey(r, keyName)
		if p != nil {
			writeProblem(w, p)
			return
		}
		if q := r.URL.Query(); q.Has("position") || q.Has("at") {
			res.stateAt(w, r, k)
			return
		}
		s, err := res.Reader.Get(k)
		if errors.Is(err, eskafka.ErrNotOwner) && res.Peers.forward(w, r, res.Ownership, k) {
			return
		}
		if err != nil {
			writeProblem(w, readProblem(w, err, res.Name, k))
			return
		}
		res.etag(w, s)
		writeJSON(w, http.StatusOK, res.Render(s))
	}
}

// readProblem maps a store read error to a problem.
func readProblem(w http.ResponseWriter, err error, name, key string) *Problem {
	switch {
	case errors.Is(err, eskafka.ErrNotFound):
		return problem(http.StatusNotFound, "%s %s not found", strings.TrimSuffix(name, "s"), quoted(key))
	case errors.Is(err, eskafka.ErrRestoring), errors.Is(err, eskafka.ErrNotOwner):
		w.Header().Set("Retry-After", "1")
		return problem(http.StatusServiceUnavailable, "the partition of %s %s is being restored; retry shortly", strings.TrimSuffix(name, "s"), quoted(key))
	}
	return problem(http.StatusInternalServerError, "read %s %s: %v", name, quoted(key), err)
}

// Page is a list response.
type Page struct {
	Items []any  `json:"items"`
	Next  string `json:"next,omitempty"`
}

// MaxLimit bounds the page size of list responses.
const MaxLimit = 1000

// list serves GET /{name}?limit=&after=.
func (res *Resource[S, C, E]) list(w http.ResponseWriter, r *http.Request) {
	limit, after, p := pageParams(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	local := r.URL.Query().Get("local")
	if local != "" && local != "true" && local != "false" {
		p := problem(http.StatusBadRequest, "local must be true or false, not %s", quoted(local))
		p.Field = "local"
		writeProblem(w, p)
		return
	}
	if local != "true" && r.Header.Get(ForwardedHeader) == "" && res.Peers != nil && res.Ownership != nil {
		res.listAll(w, r, limit, after)
		return
	}
	items, keys, partial, err := res.Reader.List(after, limit)
	if err != nil {
		writeProblem(w, problem(http.StatusInternalServerError, "list %s: %v", res.Name, err))
		return
	}
	if partial {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, problem(http.StatusServiceUnavailable, "some partitions of %s are being restored; retry shortly", res.Name))
		return
	}
	page := Page{Items: make([]any, len(items))}
	for i, s := range items {
		page.Items[i] = res.Render(s)
	}
	if len(items) == limit {
		page.Next = encodeCursor(keys[len(keys)-1])
	}
	writeJSON(w, http.StatusOK, page)
}

func pageParams(r *http.Request) (limit int, after string, p *Problem) {
	limit = 100
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			p := problem(http.StatusBadRequest, "limit must be an integer from 1 to %d, not %s", MaxLimit, quoted(s))
			p.Field = "limit"
			return 0, "", p
		}
		limit = n
	}
	if c := q.Get("after"); c != "" {
		k, err := decodeCursor(c)
		if err != nil {
			p := problem(http.StatusBadRequest, "after must be a cursor returned as \"next\" by a previous page")
			p.Field = "after"
			return 0, "", p
		}
		after = k
	}
	return limit, after, nil
}

func encodeCursor(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return string(b), err
}

// postCommand serves POST /{name}/commands: {"type": "...", ...} -> 202.
func (res *Resource[S, C, E]) postCommand(w http.ResponseWriter, r *http.Request) {
	var raw map[string]json.RawMessage
	if p := decodeBody(w, r, &raw); p != nil {
		writeProblem(w, p)
		return
	}
	var typ string
	if err := json.Unmarshal(raw["type"], &typ); err != nil || typ == "" {
		p := problem(http.StatusUnprocessableEntity, "field \"type\" must name a command: one of %s", strings.Join(res.Commands.Names(), ", "))
		p.Field = "type"
		writeProblem(w, p)
		return
	}
	ptr, ok := res.Commands.New(typ)
	if !ok {
		p := problem(http.StatusUnprocessableEntity, "unknown command type %s: want one of %s", quoted(typ), strings.Join(res.Commands.Names(), ", "))
		p.Field = "type"
		writeProblem(w, p)
		return
	}
	// decodeBody refused invalid UTF-8 and duplicate members; the
	// members but "type", as one object, must now fit the command type
	// exactly.
	delete(raw, "type")
	body, err := json.Marshal(raw)
	if err != nil {
		writeProblem(w, problem(http.StatusInternalServerError, "re-encode the command's members: %v", err))
		return
	}
	if p := decodeStrict(body, ptr); p != nil {
		writeProblem(w, p)
		return
	}
	cmd, ok := derefAs[C](ptr)
	if !ok {
		writeProblem(w, problem(http.StatusInternalServerError, "command type %s is not a command", quoted(typ)))
		return
	}
	msgID, p := res.send(r, cmd)
	if p != nil {
		writeProblem(w, p)
		return
	}
	w.Header().Set("Location", "/"+res.Name+"/commands/"+msgID)
	writeJSON(w, http.StatusAccepted, map[string]string{"msgId": msgID})
}

// MaxWait bounds the ?wait= of a command outcome's long poll.
const MaxWait = time.Minute

// OutcomeView is the JSON shape of a command's outcome.
type OutcomeView struct {
	MsgID   string            `json:"msgId"`
	Status  string            `json:"status"`
	Version int64             `json:"version"`
	Events  []json.RawMessage `json:"events"`
	Error   *es.Rejection     `json:"error,omitempty"`
}

// commandOutcome serves GET /{name}/commands/{msgId}?wait=5s.
func (res *Resource[S, C, E]) commandOutcome(w http.ResponseWriter, r *http.Request, msgID string) {
	if len(msgID) == 0 || len(msgID) > 128 {
		writeProblem(w, problem(http.StatusBadRequest, "malformed msgId"))
		return
	}
	var wait time.Duration
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > MaxWait {
			p := problem(http.StatusBadRequest, "wait must be a duration from 0s to %s, such as 5s, not %s", MaxWait, quoted(s))
			p.Field = "wait"
			writeProblem(w, p)
			return
		}
		wait = d
	}
	result, ok, err := res.Writer.Lookup(msgID)
	if err != nil {
		writeProblem(w, problem(http.StatusInternalServerError, "decode outcome %s: %v", quoted(msgID), err))
		return
	}
	if !ok && wait > 0 {
		allowWait(w, wait)
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		result, err = res.Writer.Await(ctx, msgID)
		ok = err == nil
	}
	if !ok {
		writeProblem(w, problem(http.StatusNotFound, "no outcome for command %s (yet)", quoted(msgID)))
		return
	}
	view := OutcomeView{MsgID: msgID, Status: result.Status, Version: result.Version, Events: []json.RawMessage{}, Error: result.Rejection}
	for _, e := range result.Events {
		b, _, err := res.Events.Encode(e)
		if err != nil {
			writeProblem(w, problem(http.StatusInternalServerError, "encode event: %v", err))
			return
		}
		view.Events = append(view.Events, b)
	}
	writeJSON(w, http.StatusOK, view)
}
