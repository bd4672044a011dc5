package embedded_test

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/embedded"
)

// Example starts a broker that keeps nothing on disk and requires SASL
// with credentials of its own, and writes and reads a record with a
// client that connects as the broker says (Client).
func Example() {
	broker, err := embedded.Start("127.0.0.1:0", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer broker.Close()
	fmt.Println("clients authenticate with", broker.Client().Protocol())

	security, err := broker.Client().ClientOpts()
	if err != nil {
		fmt.Println(err)
		return
	}
	cl, err := kgo.NewClient(append(security,
		kgo.SeedBrokers(broker.Addr()),
		kgo.ConsumeTopics("greetings"),
	)...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "greetings"); err != nil {
		fmt.Println(err)
		return
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "greetings", Value: []byte("hello")}).FirstErr(); err != nil {
		fmt.Println(err)
		return
	}
	fetches := cl.PollFetches(ctx)
	if err := fetches.Err(); err != nil {
		fmt.Println(err)
		return
	}
	fetches.EachRecord(func(r *kgo.Record) { fmt.Println(string(r.Value)) })
	// Output:
	// clients authenticate with SASL_PLAINTEXT
	// hello
}
