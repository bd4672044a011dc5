package loadgen

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bookscatalog/catalog/embedded"
	"github.com/bookscatalog/catalog/kafkasec"
)

// ParseArgs parses the flags of `catalog loadgen` into Options (Progress is
// left to the caller) and checks them, with the Kafka security settings
// (kafkasec) and DATA_DIR from the environment. The flag package writes
// usage and its own errors to output; -h gives flag.ErrHelp.
func ParseArgs(args []string, output io.Writer) (Options, error) {
	return parseArgs(args, os.Getenv, output)
}

// parseArgs is ParseArgs reading the variables with getenv.
func parseArgs(args []string, getenv func(string) string, output io.Writer) (Options, error) {
	fs := flag.NewFlagSet("catalog loadgen", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintf(output, `Usage: catalog loadgen [flags]

Drives a running catalog service (or cluster) with concurrent clients and
reports throughput, errors and latency percentiles. Modes:
  http       POST /authors (unique authors), optionally mixed with PUT updates
  http-read  GET /authors/{code} of authors it creates first (-seed) or lists (-seed 0)
  kafka      commands straight to {service}.authors.commands, outcomes from
             {service}.authors.results (read_committed), matched by msgId;
             without -brokers, to the embedded broker of the service whose
             DATA_DIR is -data-dir, with the credentials kept there

Flags:
`)
		fs.PrintDefaults()
	}
	var o Options
	mode := fs.String("mode", ModeHTTP, "http, http-read or kafka")
	urls := fs.String("url", DefaultURL, "comma-separated base URLs of the HTTP modes, used round-robin")
	brokers := fs.String("brokers", DefaultBroker, "comma-separated Kafka bootstrap servers of -mode kafka")
	fs.StringVar(&o.Service, "service", DefaultService, "service name (topic prefix) of -mode kafka")
	fs.IntVar(&o.Clients, "clients", DefaultClients, "concurrent clients")
	fs.Int64Var(&o.Count, "n", 0, "number of requests (0: until -duration)")
	fs.DurationVar(&o.Duration, "duration", 0, fmt.Sprintf("how long to run (default %s; with -n, at most %s)", DefaultDuration, DefaultMaxDuration))
	fs.Float64Var(&o.Rate, "rate", 0, "fixed overall rate in requests/s, open loop (0: as fast as answers come)")
	fs.DurationVar(&o.Timeout, "timeout", DefaultTimeout, "timeout of each request")
	tokenFile := fs.String("token-file", "", "file holding a bearer token for the HTTP modes (a service with authentication on; default $CATALOG_TOKEN)")
	mix := fs.String("mix", "", "write mix, such as create=1,update=3 (default creates only)")
	upc := fs.Int("updates-per-create", 0, "updates of each created author (same as -mix create=1,update=N)")
	seed := fs.Int("seed", DefaultSeed, "authors -mode http-read creates before it measures (0: read the existing ones)")
	fs.StringVar(&o.Format, "format", "text", "report format: text or json")
	kafkaSec := kafkasec.Flags(fs, getenv)
	dataDir := fs.String("data-dir", cmp.Or(strings.TrimSpace(getenv("DATA_DIR")), "./data"), "the DATA_DIR of the service whose embedded broker -mode kafka drives when -brokers is not given (DATA_DIR)")
	fs.DurationVar(&o.ProgressEvery, "progress", DefaultProgress, "interval of progress lines on stderr (0: none)")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	bad := func(format string, a ...any) (Options, error) {
		return Options{}, fmt.Errorf("loadgen: "+format, a...)
	}
	if fs.NArg() > 0 {
		return bad("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.Mode = *mode
	o.URLs = splitList(*urls)
	o.Token = strings.TrimSpace(os.Getenv("CATALOG_TOKEN"))
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return bad("-token-file: %v", err)
		}
		if o.Token = strings.TrimSpace(string(b)); o.Token == "" {
			return bad("-token-file: %s is empty", *tokenFile)
		}
	}
	o.Brokers = splitList(*brokers)
	if len(o.URLs) == 0 {
		return bad("-url: empty")
	}
	if len(o.Brokers) == 0 {
		return bad("-brokers: empty")
	}
	if o.Clients < 1 {
		return bad("-clients %d: want at least 1", o.Clients)
	}
	if o.Count < 0 {
		return bad("-n %d: must not be negative", o.Count)
	}
	if set["duration"] && o.Duration <= 0 {
		return bad("-duration %s: must be positive", o.Duration)
	}
	if o.Timeout <= 0 {
		return bad("-timeout %s: must be positive", o.Timeout)
	}
	switch {
	case set["mix"] && set["updates-per-create"]:
		return bad("-mix and -updates-per-create: give one")
	case set["mix"]:
		m, err := ParseMix(*mix)
		if err != nil {
			return bad("-%w", err)
		}
		o.Mix = m
	case *upc < 0:
		return bad("-updates-per-create %d: must not be negative", *upc)
	default:
		o.Mix = Mix{Create: 1, Update: *upc}
	}
	if (set["mix"] || set["updates-per-create"]) && o.Mode == ModeHTTPRead {
		return bad("-mix and -updates-per-create are for the write modes")
	}
	switch {
	case *seed < 0:
		return bad("-seed %d: must not be negative", *seed)
	case *seed == 0:
		o.Seed = -1 // list instead
	default:
		o.Seed = *seed
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = -1
	}
	var err error
	if o.Kafka, err = kafkaSec(); err != nil {
		return bad("%w", err)
	}
	if o.Mode == ModeKafka && !set["brokers"] && !o.Kafka.Enabled() {
		// The default broker is the embedded one, which wants the
		// credentials the service keeps in its DATA_DIR.
		creds, err := embedded.Credentials(*dataDir)
		if err != nil {
			return bad("-mode kafka without -brokers drives the embedded broker, but its credentials are not in -data-dir %s (DATA_DIR): "+
				"give the service's DATA_DIR, or -brokers and the KAFKA_SASL_* settings of another broker: %w", *dataDir, err)
		}
		o.Kafka.SASL = creds
	}
	// The remaining checks (mode, URLs, limits, format) are Run's.
	check := o
	if err := check.normalize(); err != nil {
		return bad("%w", err)
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
