package eskafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/bookscatalog/catalog/embedded"
	"github.com/bookscatalog/catalog/eskafka"
)

// ExampleApp runs the counters aggregate of this package's tests on an
// embedded broker: one NewApp, one Register, Run, and a command sent
// through the aggregate's gateway. No topic is listed: Start (called by
// Run) creates those the processor and its follower need.
func ExampleApp() {
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

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	for !app.Ready() {
		time.Sleep(20 * time.Millisecond)
	}

	for i, c := range []cmd{open{"c1"}, add{"c1", 5}} {
		msgID := fmt.Sprintf("example-%d", i)
		if _, err := counter.Gateway.Send(ctx, c, eskafka.SendOptions{MsgID: msgID}); err != nil {
			fmt.Println(err)
			return
		}
		res, err := counter.Gateway.Await(ctx, eskafka.Sent{MsgID: msgID})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%T: %s, total %d\n", c, res.Status, res.State.Total)
	}
	cancel()
	fmt.Println("stopped:", <-done)
	// Output:
	// eskafka_test.open: accepted, total 0
	// eskafka_test.add: accepted, total 5
	// stopped: <nil>
}
