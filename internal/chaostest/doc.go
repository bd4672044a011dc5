// Package chaostest holds the chaos test of the catalog: three instances of
// the service (child processes built from cmd/catalog) on a real Apache
// Kafka cluster of three brokers (scripts/kafka cluster), under steady
// writes and reads, while brokers are killed, frozen and restarted and
// instances are killed and frozen. A history checker then reads every topic
// back and checks exactly-once and read-your-writes; the figures of each
// fault (how long writes waited, which statuses failed requests got, the
// time back to full health) are logged and, with CHAOS_REPORT set, written
// as JSON. The package has no code outside its tests.
//
// It runs only when CHAOS_KAFKA_DIR names a cluster directory of
// scripts/kafka and KAFKA_BROKERS its bootstrap list (scripts/test does
// both); see docs/reliability.md.
package chaostest
