package eskafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/embedded"
	"github.com/bookscatalog/catalog/eskafka"
)

// additions is a projection's transform: it counts the additions made to
// each counter, a read model the aggregate itself does not keep. It runs
// in the stage's transaction, so each event is counted exactly once.
type additions struct{ table *eskafka.Table }

func (a additions) Handle(tx *eskafka.Tx, r *kgo.Record) error {
	ev, err := codecs.Event.Decode(r.Value)
	if err != nil {
		return err
	}
	if _, ok := ev.(added); !ok {
		return nil
	}
	key := string(r.Key) // the events topic is keyed by counter id
	n := 0
	if b, ok, err := tx.Get(a.table, key); err != nil {
		return err
	} else if ok {
		n, _ = strconv.Atoi(string(b))
	}
	tx.Put(a.table, key, []byte(strconv.Itoa(n+1)))
	return nil
}

// ExampleApp_AddStage adds a projection beside an aggregate: a stage that
// reads the aggregate's events and keeps a table, registered with one
// AddStage. Its table's changelog is planned and created by Start like
// the aggregate's topics; nothing is listed by hand.
func ExampleApp_AddStage() {
	broker, err := embedded.Start("127.0.0.1:0", "", embedded.Plaintext())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer broker.Close()

	app, err := eskafka.NewApp(eskafka.AppConfig{Config: eskafka.Config{
		Brokers: []string{broker.Addr()}, Service: "example", InstanceID: "one", Partitions: 3,
		Logger: slog.New(slog.DiscardHandler),
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer app.Close()
	counter := eskafka.Register(app, counters, codecs)

	// The projection: its transform and one line.
	table := &eskafka.Table{Prefix: "n/", Topic: "example.additions.changelog", Hashed: true}
	stage := eskafka.NewStage(eskafka.StageSpec{
		Name: "additions", Inputs: []string{counter.Processor.Topics().Events},
		Tables: []*eskafka.Table{table}, Transform: additions{table},
	}, app.StageConfig("additions"))
	app.AddStage(stage)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	for !app.Ready() && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	for i, c := range []cmd{open{"c1"}, add{"c1", 5}, add{"c1", 2}} {
		msgID := fmt.Sprintf("example-%d", i)
		if _, err := counter.Gateway.Send(ctx, c, eskafka.SendOptions{MsgID: msgID}); err != nil {
			fmt.Println(err)
			return
		}
		if _, err := counter.Gateway.Await(ctx, eskafka.Sent{MsgID: msgID}); err != nil {
			fmt.Println(err)
			return
		}
	}

	// The read model follows the events: wait until it has caught up.
	for ctx.Err() == nil {
		if b, err := stage.Lookup(table, "c1"); err == nil && string(b) == "2" {
			fmt.Println("additions to c1:", string(b))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	fmt.Println("stopped:", <-done)
	// Output:
	// additions to c1: 2
	// stopped: <nil>
}
