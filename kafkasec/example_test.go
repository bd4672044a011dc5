package kafkasec_test

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/kafkasec"
)

// ExampleFromEnv reads the settings from the variables (a map here; a
// program passes os.Getenv) and makes a client with them. The password
// never reaches a log line.
func ExampleFromEnv() {
	env := map[string]string{
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"KAFKA_SASL_USERNAME":  "bank",
		"KAFKA_SASL_PASSWORD":  "s3cret",
	}
	sec, err := kafkasec.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		fmt.Println(err)
		return
	}
	opts, err := sec.ClientOpts()
	if err != nil {
		fmt.Println(err)
		return
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers("127.0.0.1:9092"))...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()

	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // for a stable output
			}
			return a
		},
	}))
	log.Info("connecting to Kafka", "security", sec)

	// Settings that contradict each other are refused, naming the
	// variable to fix.
	env["KAFKA_SASL_MECHANISM"] = "GSSAPI"
	_, err = kafkasec.FromEnv(func(k string) string { return env[k] })
	fmt.Println(err)
	// Output:
	// level=INFO msg="connecting to Kafka" security.protocol=SASL_PLAINTEXT security.mechanism=SCRAM-SHA-512 security.user=bank
	// KAFKA_SASL_MECHANISM: "GSSAPI" must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
}

// ExampleFlags gives a command the settings as flags, each defaulting to
// its variable: here the variables ask for TLS and a flag turns it off
// again.
func ExampleFlags() {
	env := map[string]string{"KAFKA_TLS": "true"}
	fs := flag.NewFlagSet("bank", flag.ContinueOnError)
	load := kafkasec.Flags(fs, func(k string) string { return env[k] })
	if err := fs.Parse([]string{"-kafka-tls=false"}); err != nil {
		fmt.Println(err)
		return
	}
	sec, err := load()
	fmt.Println(sec.Protocol(), err)
	// Output:
	// PLAINTEXT <nil>
}
