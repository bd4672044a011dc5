package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/avro"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/ids"
	"github.com/bookscatalog/catalog/internal/catalogavro"
	"github.com/bookscatalog/catalog/internal/domain/author"
	"github.com/bookscatalog/catalog/schemaregistry"
)

// kafkaDriver sends author commands to the commands topic as the service's
// gateway does (eskafka.Gateway.Send) and follows the results topic for
// their outcomes.
type kafkaDriver struct {
	opts     *Options
	topics   eskafka.Topics
	reg      *schemaregistry.Registry
	cmds     *avro.Union[author.Command]
	outcomes *avro.Value[eskafka.Outcome]
	prod     *kgo.Client
	cons     *kgo.Client
	seq      atomic.Int64

	mu      sync.Mutex
	waiters map[string]chan string // by msgId: the error kind of the outcome

	cancel context.CancelFunc
	done   chan struct{}
}

// newKafkaDriver connects to opts.Brokers, checks that the service's author
// topics exist, builds the Avro codecs on the service's schema registry
// (the same schemas and namespaces as the service's) and starts following
// the results topic from its current end.
func newKafkaDriver(ctx context.Context, opts *Options) (_ *kafkaDriver, err error) {
	d := &kafkaDriver{opts: opts, topics: eskafka.AggregateTopics(opts.Service, "authors"), waiters: map[string]chan string{}}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	secOpts, err := opts.Kafka.ClientOpts()
	if err != nil {
		return nil, fmt.Errorf("kafka security: %w", err)
	}
	d.prod, err = kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}, secOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, max(opts.Timeout, DefaultTimeout))
	defer cancel()
	adm := kadm.NewClient(d.prod)
	topics, err := adm.ListTopics(sctx, d.topics.Commands, d.topics.Results)
	if err != nil {
		return nil, fmt.Errorf("list topics on %v: %w", opts.Brokers, err)
	}
	for _, t := range []string{d.topics.Commands, d.topics.Results} {
		if td, ok := topics[t]; !ok || td.Err != nil {
			return nil, fmt.Errorf("topic %s not found on %v: is the service (-service %s) running there?", t, opts.Brokers, opts.Service)
		}
	}
	ends, err := adm.ListEndOffsets(sctx, d.topics.Results)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", d.topics.Results, err)
	}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { from[o.Partition] = kgo.NewOffset().At(o.Offset) })

	logOut := opts.Progress
	if logOut == nil {
		logOut = io.Discard
	}
	d.reg, err = schemaregistry.New(sctx, opts.Brokers, opts.Service+".schemas", schemaregistry.WithClientOpts(secOpts...),
		schemaregistry.WithLogger(slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	// The service's codecs; of them, the two this driver writes and reads.
	codecs, err := catalogavro.New(d.reg)
	if err != nil {
		return nil, fmt.Errorf("avro schemas: %w", err)
	}
	d.cmds, d.outcomes = codecs.AuthorCommands, codecs.Outcomes
	if err := avro.Register(sctx, d.cmds, d.outcomes); err != nil {
		return nil, fmt.Errorf("register schemas: %w", err)
	}

	d.cons, err = kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{d.topics.Results: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100e6), // 100ms, as the service's outcome follower
	}, secOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("results consumer: %w", err)
	}
	// Connect the producer (and get its producer id) before the clock runs.
	if err := d.prod.Ping(sctx); err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	fctx, fcancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel, d.done = fcancel, make(chan struct{})
	go d.follow(fctx)
	return d, nil
}

// follow hands each outcome on the results topic to the client waiting for
// it.
func (d *kafkaDriver) follow(ctx context.Context) {
	defer close(d.done)
	for {
		fetches := d.cons.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachRecord(func(r *kgo.Record) {
			var msgID string
			for _, h := range r.Headers {
				if h.Key == eskafka.HeaderMsgID {
					msgID = string(h.Value)
				}
			}
			d.mu.Lock()
			ch, ok := d.waiters[msgID]
			delete(d.waiters, msgID)
			d.mu.Unlock()
			if !ok {
				return // another writer's
			}
			out, err := d.outcomes.Decode(r.Value)
			switch {
			case err != nil:
				ch <- "undecodable outcome"
			case out.Accepted():
				ch <- ""
			case out.Rejection != nil:
				ch <- "rejected: " + out.Rejection.Code
			default:
				ch <- "rejected"
			}
		})
	}
}

func (d *kafkaDriver) close() {
	if d.cancel != nil {
		d.cancel()
		<-d.done
	}
	if d.cons != nil {
		d.cons.Close()
	}
	if d.prod != nil {
		d.prod.Close()
	}
	if d.reg != nil {
		d.reg.Close()
	}
}

func (d *kafkaDriver) client(int) client {
	return &kafkaWriter{d: d, mixer: mixer{mix: d.opts.Mix}}
}

// kafkaWriter writes as its mixer says.
type kafkaWriter struct {
	d *kafkaDriver
	mixer
	updates int
}

func (c *kafkaWriter) do(ctx context.Context, _ int64) (op, kind string) {
	var cmd author.Command
	code := c.next()
	if code == "" {
		op, code = "create", c.d.opts.Prefix+"-"+strconv.FormatInt(c.d.seq.Add(1), 36)
		cmd = author.CreateAuthor{Code: code, FirstName: "Load", LastName: "Generator"}
	} else {
		c.updates++
		op, cmd = "update", author.UpdateAuthor{Code: code, FirstName: "Load", LastName: "Generator " + strconv.Itoa(c.updates)}
	}
	kind = c.d.send(ctx, cmd)
	if kind == "" && op == "create" {
		c.createdOK(code)
	}
	return op, kind
}

// send produces cmd as eskafka.Gateway.Send does and waits for its outcome.
func (d *kafkaDriver) send(ctx context.Context, cmd author.Command) (kind string) {
	b, typ, err := d.cmds.Encode(cmd)
	if err != nil {
		return "encode: " + trim(err.Error(), 80)
	}
	msgID := ids.New()
	ch := make(chan string, 1)
	d.mu.Lock()
	d.waiters[msgID] = ch
	d.mu.Unlock()
	r := &kgo.Record{Topic: d.topics.Commands, Key: []byte(cmd.AuthorCode()), Value: b, Headers: []kgo.RecordHeader{
		{Key: eskafka.HeaderMsgID, Value: []byte(msgID)},
		{Key: eskafka.HeaderType, Value: []byte(typ)},
	}}
	if err := d.prod.ProduceSync(ctx, r).FirstErr(); err != nil {
		d.forget(msgID)
		return produceKind(err)
	}
	select {
	case k := <-ch:
		return k
	case <-ctx.Done():
		d.forget(msgID)
		return errKind(ctx.Err())
	}
}

func (d *kafkaDriver) forget(msgID string) {
	d.mu.Lock()
	delete(d.waiters, msgID)
	d.mu.Unlock()
}

func produceKind(err error) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return errKind(err)
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return "produce: " + ke.Message
	}
	return "produce: " + errKind(err)
}
