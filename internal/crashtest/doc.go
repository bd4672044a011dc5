// Package crashtest holds the crash test of the catalog service. It builds
// cmd/catalog and runs it as a separate process against a broker (an
// in-process kfake listening on TCP, or the real Kafka named by
// KAFKA_BROKERS), sends a stream of writes from concurrent clients, kills
// the process with SIGKILL in the middle, starts it again on the same data
// directory (with or without its local stores), and checks that no
// acknowledged write was lost, nothing was applied twice, and the events and
// changelog topics agree. The package has no code outside its tests.
package crashtest
