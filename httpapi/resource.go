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

	"github.com/bookscatalog/catalog/auth"
	"github.com/bookscatalog/catalog/codec/jsoncodec"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
)

// Writer sends an aggregate's commands and returns their outcomes
// (eskafka.Gateway implements it).
type Writer[S, C, E any] interface {
	// Send writes cmd; Await waits for the outcome of what Send wrote,
	// or with eskafka.Sent{MsgID: id}, for any outcome of id.
	Send(ctx context.Context, cmd C, opt eskafka.SendOptions) (eskafka.Sent, error)
	Await(ctx context.Context, sent eskafka.Sent) (*eskafka.Result[S, E], error)
	Lookup(msgID string) (*eskafka.Result[S, E], bool, error)
}

// Reader reads an aggregate's states (eskafka.Processor implements it).
// A Reader that also implements History serves each item's history and
// past states; one that implements Ownership lets any instance answer any
// read (a key owned elsewhere is forwarded, a list merges all instances).
type Reader[S any] interface {
	Get(key string) (S, error)
	List(after string, limit int) (items []S, keys []string, partial bool, err error)
}

// Resource is one aggregate type as the HTTP API exposes it, registered
// with Config.Handle. Its collection is /{Aggregate.Name}, one item
// /{Aggregate.Name}/{key}; the aggregate also gives the key of every
// command (Aggregate.Key) and the version of every state, for ETags
// (Aggregate.Version). Every resource serves:
//
//   - GET /{name} (a page of items in key order) and GET /{name}/{key};
//   - GET /{name}/{key}/history and past states (?position=, ?at=), when
//     the Reader implements History;
//   - POST /{name}/commands and GET /{name}/commands/{msgId} (the command
//     endpoints);
//   - its Writes and Reads.
type Resource[S, C, E any] struct {
	// Aggregate is the aggregate the resource exposes.
	Aggregate es.Aggregate[S, C, E]
	// Singular names one item in messages ("account", for "account
	// \"a1\" not found").
	Singular string
	// KeyName names the key in paths and problems: "id" serves
	// /accounts/{id} and answers "malformed id in path".
	KeyName string
	// ValidKey reports why a key is malformed (a 400 in a path, before
	// any read; a rejection before a command is sent), nil when it is
	// well-formed. An error with a RejectionCode method keeps its code
	// and field (es.AsRejection). Nil accepts any key.
	ValidKey func(key string) error
	Writer   Writer[S, C, E]
	Reader   Reader[S]
	// Commands and Events are the JSON shapes of the command endpoints
	// and of the events in outcomes and histories.
	Commands *jsoncodec.Union[C]
	Events   *jsoncodec.Union[E]
	// Render turns a state into its JSON representation; nil shows the
	// state as it is.
	Render func(S) any
	// Precheck, when set, vets every command before it is sent, from
	// whichever endpoint (a check the aggregate cannot make itself, such
	// as that another aggregate exists), and returns the command to send:
	// cmd, or cmd completed with what the check learned (such as the
	// position in the other aggregate's history it was seen at). It must
	// not change the command's key.
	Precheck func(ctx context.Context, cmd C) (C, *Problem)
	// Writes are the resource's write endpoints, each one command.
	Writes []Write[S, C, E]
	// Reads are further reads of one item: GET /{name}/{key}/{sub}.
	Reads map[string]Read

	// Set when mounted, from the API's Config.
	peers        *Peers
	partitions   int
	writeTimeout time.Duration
}

// Write is one write endpoint: a request becomes one command, sent and
// awaited like every other (Idempotency-Key, If-Match, Precheck, timeout),
// and the answer is the new state's representation with its ETag.
type Write[S, C, E any] struct {
	// Method is POST, PUT or DELETE.
	Method string
	// Path follows the collection's path: "" for the collection
	// itself, "/{key}" for one item, "/{key}/chapters/{chapterId}"...
	// The {key} is checked for form before Command runs.
	Path string
	// Command turns the request into the command to send.
	Command func(r *WriteRequest) (C, *Problem)
	// Status is the status of success. 204 answers no body; 201 on the
	// collection itself answers the new item's Location.
	Status int
	// Answer, when set, is the body instead of the new state's
	// representation (say, the part the command added).
	Answer func(result *eskafka.Result[S, E]) any
}

// WriteRequest is a write's request as Write.Command sees it.
type WriteRequest struct {
	*http.Request
	// Key is the path's key, checked for form; "" on the collection.
	Key string
	w   http.ResponseWriter
}

// Decode strictly decodes the request's JSON object body into v: the
// content type must be JSON, the body at most MaxBodyBytes, valid UTF-8,
// with no member twice and no member that v does not have exactly.
func (r *WriteRequest) Decode(v any) *Problem { return decodeBody(r.w, r.Request, v) }

// NewID returns an id for an item the request creates: random, or, with an
// Idempotency-Key, derived from it (and kind), so that a retry names the
// same item and is recognised.
func (r *WriteRequest) NewID(kind string) string {
	ik := r.Header.Get("Idempotency-Key")
	if ik == "" {
		return ids.New()
	}
	return ids.FromName(append([]string{kind, ik}, idempotencyScope(r.Request)...)...)
}

// Read is a further read of one item, GET /{name}/{key}/{sub}, from another
// read model (such as a projection keyed like the resource).
type Read struct {
	// Get returns the answer for a key checked for form. Its errors are
	// the Reader's: eskafka.ErrNotFound is a 404, eskafka.ErrNotOwner
	// is forwarded to the owner, eskafka.ErrRestoring a 503.
	Get func(ctx context.Context, key string) (any, error)
	// Ownership places the read model's keys, for forwarding; nil
	// answers from this instance only.
	Ownership Ownership
}

// name is the collection's path segment.
func (res *Resource[S, C, E]) name() string { return res.Aggregate.Name }

// ownership returns the Reader's Ownership, if it has one.
func (res *Resource[S, C, E]) ownership() Ownership {
	o, _ := res.Reader.(Ownership)
	return o
}

// render returns the representation of s.
func (res *Resource[S, C, E]) render(s S) any {
	if res.Render == nil {
		return s
	}
	return res.Render(s)
}

// checkKey returns why key is malformed, nil if it is not. An empty key
// is, also without ValidKey: the writer would refuse it as a failure.
func (res *Resource[S, C, E]) checkKey(key string) *es.Rejection {
	if key == "" {
		return es.Reject(es.CodeInvalid, res.KeyName, "the command names no %s", res.KeyName)
	}
	if res.ValidKey == nil {
		return nil
	}
	if err := res.ValidKey(key); err != nil {
		return es.AsRejection(err)
	}
	return nil
}

// check panics on a resource that cannot be served: a mistake in the
// program, found when the API is made (as http.ServeMux does with a bad
// pattern), not at the first request.
func (res *Resource[S, C, E]) check() {
	a := res.Aggregate
	var missing []string
	for _, f := range []struct {
		name  string
		unset bool
	}{
		{"Aggregate.Name", a.Name == ""}, {"Aggregate.Key", a.Key == nil}, {"Aggregate.Version", a.Version == nil},
		{"Singular", res.Singular == ""}, {"KeyName", res.KeyName == ""}, {"Writer", res.Writer == nil},
		{"Reader", res.Reader == nil}, {"Commands", res.Commands == nil}, {"Events", res.Events == nil},
	} {
		if f.unset {
			missing = append(missing, f.name)
		}
	}
	for i, wr := range res.Writes {
		if wr.Command == nil || wr.Status == 0 || wr.Method == "" {
			missing = append(missing, fmt.Sprintf("Writes[%d] (%s %s): Method, Command and Status", i, wr.Method, wr.Path))
		}
	}
	if len(missing) > 0 {
		panic(fmt.Sprintf("httpapi: resource %q lacks %s", a.Name, strings.Join(missing, ", ")))
	}
	for sub := range res.Reads {
		if sub == "history" || sub == "" || strings.Contains(sub, "/") {
			panic(fmt.Sprintf("httpapi: resource %q: %q cannot name a read", a.Name, sub))
		}
	}
}

// mount serves the resource on mux, with the API's settings. It serves a
// copy, so that one resource can be mounted in APIs of different
// settings.
func (res *Resource[S, C, E]) mount(mux *http.ServeMux, cfg *Config) {
	res.check()
	m := *res
	m.peers, m.partitions, m.writeTimeout = cfg.Peers, cfg.Partitions, cfg.WriteTimeout
	if m.writeTimeout <= 0 {
		m.writeTimeout = DefaultWriteWait
	}
	m.routes(mux)
}

// routes mounts the resource's routes on mux.
func (res *Resource[S, C, E]) routes(mux *http.ServeMux) {
	base := "/" + res.name()
	item := base + "/{" + res.KeyName + "}"
	for _, wr := range res.Writes {
		mux.HandleFunc(wr.Method+" "+base+strings.ReplaceAll(wr.Path, "{key}", "{"+res.KeyName+"}"), res.write(wr))
	}
	mux.HandleFunc("GET "+item, res.getOne)
	mux.HandleFunc("GET "+base, res.list)
	mux.HandleFunc("POST "+base+"/commands", res.postCommand)
	// One pattern for /{name}/commands/{msgId}, /{name}/{key}/history
	// and the Reads, which overlap: "history" and the Reads' names are
	// never msgIds.
	subs := narrowRoute{serves: func(r *http.Request) bool {
		key, sub, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, base+"/"), "/")
		_, isRead := res.Reads[sub]
		return ok && (sub == "history" || isRead || key == "commands")
	}}
	subs.handler = func(w http.ResponseWriter, r *http.Request) {
		sub := r.PathValue("sub")
		read, isRead := res.Reads[sub]
		switch {
		case sub == "history" || isRead:
			k, p := res.pathKey(r)
			switch {
			case p != nil:
				writeProblem(w, p)
			case isRead:
				res.read(w, r, k, read)
			default:
				res.history(w, r, k)
			}
		case r.PathValue(res.KeyName) == "commands":
			res.commandOutcome(w, r, sub)
		default:
			unmatched(mux)(w, r)
		}
	}
	mux.Handle("GET "+item+"/{sub}", subs)
}

// DefaultWriteWait bounds a write's wait for its outcome when
// Config.WriteTimeout is not set.
const DefaultWriteWait = 10 * time.Second

// write serves one Write.
func (res *Resource[S, C, E]) write(wr Write[S, C, E]) http.HandlerFunc {
	keyed := strings.Contains(wr.Path, "{key}")
	return func(w http.ResponseWriter, r *http.Request) {
		req := &WriteRequest{Request: r, w: w}
		if keyed {
			k, p := res.pathKey(r)
			if p != nil {
				writeProblem(w, p)
				return
			}
			req.Key = k
		}
		cmd, p := wr.Command(req)
		if p != nil {
			writeProblem(w, p)
			return
		}
		result, p := res.execute(w, r, cmd)
		if p != nil {
			writeProblem(w, p)
			return
		}
		if wr.Status == http.StatusNoContent {
			w.WriteHeader(wr.Status)
			return
		}
		if wr.Status == http.StatusCreated && !keyed {
			w.Header().Set("Location", "/"+res.name()+"/"+res.Aggregate.Key(cmd))
		}
		res.etag(w, result.State)
		if wr.Answer != nil {
			writeJSON(w, wr.Status, wr.Answer(result))
			return
		}
		writeJSON(w, wr.Status, res.render(result.State))
	}
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
	return ids.FromName(append([]string{res.name(), key, kind, ik}, idempotencyScope(r)...)...), true, nil
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
	bad := problem(http.StatusBadRequest, `If-Match must be the entity tag of a version, such as "3", not %s`, quoted(h))
	bad.Field = "If-Match"
	// "3", or W/"3" (a proxy may weaken the ETags it passes on), or 3
	// bare (a hand-written header): digits only, so that "+3", "3 or
	// ""3"" are refused rather than guessed at.
	s := strings.TrimPrefix(strings.TrimSpace(h), "W/")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" || len(s) > 19 || strings.TrimLeft(s, "0123456789") != "" {
		return nil, bad
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, bad
	}
	return &v, nil
}

// send checks cmd and sends it with the request's Idempotency-Key and
// If-Match, within ctx: the write's whole deadline, which its precheck and
// its wait for Kafka share. The key's form is checked before it becomes a
// record key (a huge one would not even fit a record). When the precheck
// refuses an idempotent command, replayed is the outcome recorded for the
// command's first try, if it has one (replay), and sent is empty.
func (res *Resource[S, C, E]) send(ctx context.Context, r *http.Request, cmd C) (sent eskafka.Sent, replayed *eskafka.Result[S, E], p *Problem) {
	key := res.Aggregate.Key(cmd)
	if rej := res.checkKey(key); rej != nil {
		return eskafka.Sent{}, nil, rejectionProblem(rej, "")
	}
	// The request's own headers first: a malformed one is refused before
	// the precheck asks another instance anything.
	msgID, idem, p := res.msgIDFor(r, key, fmt.Sprintf("%T", cmd))
	if p != nil {
		return eskafka.Sent{}, nil, p
	}
	ev, p := expectedVersion(r)
	if p != nil {
		return eskafka.Sent{}, nil, p
	}
	opt := eskafka.SendOptions{MsgID: msgID, ExpectedVersion: ev, Idempotent: idem}
	if p := auth.FromContext(r.Context()); p != nil {
		// Who sent it, recorded on the command and its events.
		opt.Subject = p.Subject
	}
	if res.Precheck != nil {
		checked, p := res.Precheck(ctx, cmd)
		if p != nil {
			if idem && p.Status >= 400 && p.Status < 500 {
				replayed, p := res.replay(ctx, cmd, opt, p)
				return eskafka.Sent{}, replayed, p
			}
			return eskafka.Sent{}, nil, p
		}
		if k := res.Aggregate.Key(checked); k != key {
			return eskafka.Sent{}, nil, problem(http.StatusInternalServerError, "the precheck changed the command's key from %s to %s", quoted(key), quoted(k))
		}
		cmd = checked
	}
	sent, err := res.Writer.Send(ctx, cmd, opt)
	if err != nil {
		if errors.Is(err, eskafka.ErrSendUnconfirmed) {
			p := problem(http.StatusGatewayTimeout, "Kafka did not confirm the command within %s; it may still be applied: look it up at /%s/commands/%s, or send it again with the same Idempotency-Key", res.writeTimeout, res.name(), msgID)
			p.MsgID = msgID
			return eskafka.Sent{}, nil, p
		}
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
			// Bad input, not a failure: the body fits MaxBodyBytes but
			// the command does not fit a Kafka record.
			return eskafka.Sent{}, nil, problem(http.StatusRequestEntityTooLarge, "the command is too large to be written to Kafka: %v", err)
		}
		return eskafka.Sent{}, nil, problem(http.StatusServiceUnavailable, "the command could not be written to Kafka: %v", err)
	}
	return sent, nil, nil
}

// replay answers an idempotent command that the precheck refused: it may
// be the retry of a command applied before, when what the precheck checks
// was otherwise (a book created with its author, the author deleted
// since), and a retry is answered with the first outcome. So the command
// is sent replay-only (eskafka.SendOptions.ReplayOnly): the processor
// answers it with the outcome recorded under its key, if any, and decides
// nothing. With none recorded, the answer is the precheck's refusal, and
// nothing is recorded: the key may be used again once the refusal's
// cause is gone.
func (res *Resource[S, C, E]) replay(ctx context.Context, cmd C, opt eskafka.SendOptions, refused *Problem) (*eskafka.Result[S, E], *Problem) {
	opt.ReplayOnly = true
	sent, err := res.Writer.Send(ctx, cmd, opt)
	if err != nil {
		p := problem(http.StatusServiceUnavailable, "the command was refused (%s), but whether it is the retry of a command applied before cannot be told now: %v", refused.Detail, err)
		p.MsgID = opt.MsgID
		return nil, p
	}
	result, err := res.Writer.Await(ctx, sent)
	if err != nil {
		p := problem(http.StatusGatewayTimeout, "the command was refused (%s), but whether it is the retry of a command applied before was not told within %s; look it up at /%s/commands/%s", refused.Detail, res.writeTimeout, res.name(), opt.MsgID)
		p.MsgID = opt.MsgID
		return nil, p
	}
	if rej := result.Rejection; rej != nil && (rej.Code == es.CodeNotRecorded || rej.Code == es.CodeVersionMismatch) {
		// Nothing recorded (version_mismatch: a processor of an older
		// build, which refused the replay-only command as sent).
		return nil, refused
	}
	return result, nil
}

// execute sends cmd, waits for its outcome, and returns the result of an
// accepted command or the problem of a rejected one.
func (res *Resource[S, C, E]) execute(w http.ResponseWriter, r *http.Request, cmd C) (*eskafka.Result[S, E], *Problem) {
	// One deadline for the whole write (its precheck, the send, the
	// wait for the outcome): a client is answered within WRITE_TIMEOUT
	// even when each step is slow, as when Kafka comes and goes.
	allowWait(w, res.writeTimeout)
	ctx, cancel := context.WithTimeout(r.Context(), res.writeTimeout)
	defer cancel()
	sent, replayed, p := res.send(ctx, r, cmd)
	if p != nil {
		return nil, p
	}
	if replayed != nil {
		if !replayed.Accepted() {
			return nil, rejectionProblem(replayed.Rejection, replayed.MsgID)
		}
		return replayed, nil
	}
	msgID := sent.MsgID
	result, err := res.Writer.Await(ctx, sent)
	if err != nil {
		p := problem(http.StatusGatewayTimeout, "the command was accepted for processing but its outcome did not arrive within %s; look it up at /%s/commands/%s", res.writeTimeout, res.name(), msgID)
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

// rejectionProblem maps a rejection code to its HTTP status; a code it
// does not know is the writer's problem (422).
func rejectionProblem(rej *es.Rejection, msgID string) *Problem {
	status := http.StatusUnprocessableEntity
	switch rej.Code {
	case es.CodeNotFound:
		status = http.StatusNotFound
	case es.CodeAlreadyExists:
		status = http.StatusConflict
	case es.CodeInvalid, es.CodeTooLarge, es.CodeIdempotencyKeyReused:
		// Well-formed, but not to be applied as sent: a field breaks a
		// rule, would make the aggregate too large, or the
		// Idempotency-Key names an earlier write with another body. A
		// domain's own codes are 422 too.
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
	w.Header().Set("ETag", fmt.Sprintf(`"%d"`, res.Aggregate.Version(s)))
}

// pathKey returns the key path value, checked for form.
func (res *Resource[S, C, E]) pathKey(r *http.Request) (string, *Problem) {
	k := r.PathValue(res.KeyName)
	if rej := res.checkKey(k); rej != nil {
		p := problem(http.StatusBadRequest, "malformed %s in path: %s", res.KeyName, rej.Message)
		p.Field = res.KeyName
		return "", p
	}
	return k, nil
}

// getOne serves GET /{name}/{key}.
func (res *Resource[S, C, E]) getOne(w http.ResponseWriter, r *http.Request) {
	k, p := res.pathKey(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	if q := r.URL.Query(); q.Has("position") || q.Has("at") {
		res.stateAt(w, r, k)
		return
	}
	s, err := res.Reader.Get(k)
	if errors.Is(err, eskafka.ErrNotOwner) && res.peers.forward(w, r, res.ownership(), k) {
		return
	}
	if err != nil {
		writeProblem(w, readProblem(w, err, res.Singular, k))
		return
	}
	res.etag(w, s)
	// Read after the state: a check of this item by another aggregate
	// (Check) relies on the position being no older than the state.
	if pos, ok := res.lastPosition(k); ok {
		w.Header().Set(PositionHeader, strconv.FormatInt(pos, 10))
	}
	writeJSON(w, http.StatusOK, res.render(s))
}

// lastPosition returns the position of key's last event, when the Reader
// keeps histories.
func (res *Resource[S, C, E]) lastPosition(key string) (int64, bool) {
	hist, ok := res.Reader.(History[S, E])
	if !ok {
		return 0, false
	}
	page, err := hist.History(key, 0, 0, false)
	if err != nil {
		return 0, false
	}
	return page.Total, true
}

// read serves one of the Reads for key.
func (res *Resource[S, C, E]) read(w http.ResponseWriter, r *http.Request, key string, rd Read) {
	v, err := rd.Get(r.Context(), key)
	if errors.Is(err, eskafka.ErrNotOwner) && res.peers.forward(w, r, rd.Ownership, key) {
		return
	}
	if err != nil {
		writeProblem(w, readProblem(w, err, res.Singular, key))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// readProblem maps a store read error about the item key, one of what
// singular names, to a problem.
func readProblem(w http.ResponseWriter, err error, singular, key string) *Problem {
	switch {
	case errors.Is(err, eskafka.ErrNotFound):
		return problem(http.StatusNotFound, "%s %s not found", singular, quoted(key))
	case errors.Is(err, eskafka.ErrRestoring), errors.Is(err, eskafka.ErrNotOwner):
		w.Header().Set("Retry-After", "1")
		return problem(http.StatusServiceUnavailable, "the partition of %s %s is being restored; retry shortly", singular, quoted(key))
	}
	return problem(http.StatusInternalServerError, "read %s %s: %v", singular, quoted(key), err)
}

// Page is a list response.
type Page struct {
	Items []any  `json:"items"`
	Next  string `json:"next,omitempty"`
	// Keys are the items' keys, in an answer to another instance only
	// (ForwardedHeader): the instance that merges the lists of all
	// sorts by them, so that the merge never depends on what a
	// representation holds.
	Keys []string `json:"keys,omitempty"`
}

// MaxLimit bounds the page size of list responses.
const MaxLimit = 1000

// MaxPageBytes bounds the items of one list page, as JSON: a page stops
// after the item that reaches it, with a next cursor, however large the
// limit. Without it a page of MaxLimit items of the largest size would be
// hundreds of MB, and another instance's page too large for the merge to
// read.
const MaxPageBytes = 4 << 20

// listChunk is how many states a page reads from the store at a time, so
// that the states held at once stay a few MB even when each is large.
const listChunk = 64

// localPage reads up to limit items after after from this instance's
// Reader, rendered, in key order, stopping after the item that brings the
// page to MaxPageBytes. more reports that items may follow the last.
func (res *Resource[S, C, E]) localPage(after string, limit int) (items []keyedItem, more, partial bool, err error) {
	size := 0
	for len(items) < limit {
		n := min(limit-len(items), listChunk)
		states, keys, partial, err := res.Reader.List(after, n)
		if err != nil || partial {
			return nil, false, partial, err
		}
		for i, st := range states {
			b, err := json.Marshal(res.render(st))
			if err != nil {
				return nil, false, false, fmt.Errorf("render %s %s: %w", res.Singular, quoted(keys[i]), err)
			}
			items = append(items, keyedItem{keys[i], b})
			if size += len(b); size >= MaxPageBytes {
				return items, true, false, nil
			}
		}
		if len(states) < n {
			return items, false, false, nil
		}
		after = keys[len(keys)-1]
	}
	return items, true, false, nil
}

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
	forwarded := r.Header.Get(ForwardedHeader) != ""
	if local != "true" && !forwarded && res.peers != nil && res.ownership() != nil {
		res.listAll(w, r, limit, after)
		return
	}
	items, more, partial, err := res.localPage(after, limit)
	if err != nil {
		writeProblem(w, problem(http.StatusInternalServerError, "list %s: %v", res.name(), err))
		return
	}
	if partial {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, problem(http.StatusServiceUnavailable, "some partitions of %s are being restored; retry shortly", res.name()))
		return
	}
	page := Page{Items: make([]any, len(items))}
	for i, it := range items {
		page.Items[i] = it.item
		if forwarded {
			page.Keys = append(page.Keys, it.key)
		}
	}
	if more && len(items) > 0 {
		page.Next = encodeCursor(items[len(items)-1].key)
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
	// The send may take WRITE_TIMEOUT, which may be longer than the
	// server's own write deadline, as for every write.
	allowWait(w, res.writeTimeout)
	ctx, cancel := context.WithTimeout(r.Context(), res.writeTimeout)
	defer cancel()
	sent, replayed, p := res.send(ctx, r, cmd)
	if p != nil {
		writeProblem(w, p)
		return
	}
	msgID := sent.MsgID
	if replayed != nil {
		// The retry of a command sent before: its msgId, as then.
		msgID = replayed.MsgID
	}
	w.Header().Set("Location", "/"+res.name()+"/commands/"+msgID)
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
		ctx, stop := untilShutdown(ctx, r)
		defer stop()
		result, err = res.Writer.Await(ctx, eskafka.Sent{MsgID: msgID})
		ok = err == nil
		if !ok && errors.Is(context.Cause(ctx), errShuttingDown) {
			// Another instance follows the same outcomes: ask it.
			w.Header().Set("Retry-After", "1")
			writeProblem(w, problem(http.StatusServiceUnavailable, "this instance is shutting down; ask again for the outcome of command %s", quoted(msgID)))
			return
		}
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
