package balance

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/codec/jsoncodec"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/examples/bank/account"
)

// Model is the per-customer balance read model, running as two stages of
// an eskafka.App.
type Model struct {
	route, view *eskafka.Stage
	views       *eskafka.Table
	// events is the accounts' events topic; repartition carries the
	// changes keyed by customer.
	events, repartition string
	// events decodes the accounts' events (the codec the aggregate was
	// registered with); changes and viewCodec are the model's own.
	eventCodec es.Codec[account.Event]
	changes    jsoncodec.Value[Change]
	viewCodec  jsoncodec.Value[View]
}

// Register adds the model's two stages to app and returns the model, to
// read. eventCodec must decode what the accounts aggregate writes (the
// codec it was registered with). Nothing else is needed: app plans the
// model's topics from the stages (the repartition topic and the dead-letter
// topic kept for a while, the view's changelog compacted), creates them in
// Start and runs the stages in Run.
func Register(app *eskafka.App, eventCodec es.Codec[account.Event]) *Model {
	service := app.Config().Service
	prefix := service + ".balance."
	m := &Model{
		events:      eskafka.AggregateTopics(service, account.Aggregate().Name).Events,
		repartition: prefix + "repartition",
		eventCodec:  eventCodec,
		changes:     jsoncodec.Value[Change]{Name: "BalanceChange"},
		viewCodec:   jsoncodec.Value[View]{Name: "CustomerBalance"},
	}
	// Hashed: a customer's view lives in the partition its key hashes
	// to, the partition of the repartition topic its changes arrive in,
	// so that Lookup finds it where the stage wrote it.
	m.views = &eskafka.Table{Prefix: "v/", Topic: prefix + "changelog", Hashed: true}
	m.route = eskafka.NewStage(eskafka.StageSpec{
		Name: "balance.route", Inputs: []string{m.events},
		Transform: routeTransform{m}, Outputs: []string{m.repartition}, DeadLetter: prefix + "deadletter",
	}, app.StageConfig("balance-route"))
	m.view = eskafka.NewStage(eskafka.StageSpec{
		Name: "balance.view", Inputs: []string{m.repartition},
		Tables: []*eskafka.Table{m.views}, Transform: viewTransform{m}, DeadLetter: prefix + "deadletter",
	}, app.StageConfig("balance-view"))
	app.AddStage(m.route, m.view)
	return m
}

// Get returns the view of customer, if this instance serves it:
// eskafka.ErrNotFound when the customer has no open account,
// eskafka.ErrRestoring while its partition is restored, eskafka.ErrNotOwner
// when another instance serves it (see Ownership).
func (m *Model) Get(customer string) (View, error) {
	var v View
	b, err := m.view.Lookup(m.views, customer)
	if err != nil {
		return v, err
	}
	if v, err = m.viewCodec.Decode(b); err != nil {
		return v, fmt.Errorf("decode the balance of %q: %w", customer, err)
	}
	return v, nil
}

// Ownership returns the stage that tells which instance serves which
// customer (for forwarding a read to it).
func (m *Model) Ownership() *eskafka.Stage { return m.view }

// routeTransform sends each account event's change to the repartition
// topic, keyed by the event's customer.
type routeTransform struct{ m *Model }

// Handle implements eskafka.Transform.
func (t routeTransform) Handle(tx *eskafka.Tx, r *kgo.Record) error {
	ev, err := t.m.eventCodec.Decode(r.Value)
	if err != nil && tx.Retryable(err) {
		return err
	}
	if err != nil {
		// An event the model cannot read is skipped, not retried
		// forever: the events topic stays the source of truth, and a
		// newer model can be rebuilt from it.
		t.m.route.Logger().Warn("skipping undecodable account event", "partition", r.Partition, "offset", r.Offset, "err", err)
		return nil
	}
	customer, c := ChangeOf(ev)
	b, _, err := t.m.changes.Encode(c)
	if err != nil {
		return fmt.Errorf("encode the change of account %s: %w", c.Account, err)
	}
	tx.Emit(&kgo.Record{Topic: t.m.repartition, Partition: -1, Key: []byte(customer), Value: b})
	return nil
}

// viewTransform folds the changes of one customer into the customer's
// view.
type viewTransform struct{ m *Model }

// Handle implements eskafka.Transform.
func (t viewTransform) Handle(tx *eskafka.Tx, r *kgo.Record) error {
	m := t.m
	customer := string(r.Key)
	c, err := m.changes.Decode(r.Value)
	if err != nil {
		m.view.Logger().Warn("skipping undecodable balance change", "partition", r.Partition, "offset", r.Offset, "err", err)
		return nil
	}
	var v View
	b, ok, err := tx.Get(m.views, customer)
	if err != nil {
		return err
	}
	if ok {
		if v, err = m.viewCodec.Decode(b); err != nil {
			return fmt.Errorf("decode the balance of %q: %w", customer, err)
		}
	}
	v = Apply(v, customer, c)
	if v.Empty() {
		if ok {
			tx.Put(m.views, customer, nil) // a tombstone: the customer has no account left
		}
		return nil
	}
	nb, _, err := m.viewCodec.Encode(v)
	if err != nil {
		return fmt.Errorf("encode the balance of %q: %w", customer, err)
	}
	tx.Put(m.views, customer, nb)
	return nil
}
