// Package baseline holds the physical limits the service is measured
// against (docs/performance.md, issue 16): programs that do only what any
// implementation of the same job must do on the same machine, so that the
// service's figures can be read as ratios to them, measured in the same run
// by the same load tool (catalog loadgen, scripts/bench).
//
//   - RunEOS is a bare exactly-once loop on Kafka: one franz-go
//     GroupTransactSession that consumes the authors' commands topic and,
//     per record, produces one event and one outcome the load generator
//     accepts, then commits them with the consumer offsets. No state, no
//     rules, no decoding of commands.
//   - HTTPHandler is a bare net/http server answering GET /authors/{code}
//     with the service's JSON from a map, and POST /authors storing into
//     it. No middleware.
//
// They are run as `catalog baseline eos` and `catalog baseline http`
// (Main). Neither is a service: no security, no limits, no persistence.
package baseline
