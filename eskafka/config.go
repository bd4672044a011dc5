package eskafka

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/store"
)

// Config is what a stage or processor needs beyond its logic.
type Config struct {
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// Service prefixes topic names and consumer groups.
	Service string
	// InstanceID is stable for one instance (its data directory); the
	// transactional ids are derived from it so that a restarted instance
	// fences its own unfinished transactions at once.
	InstanceID string
	// AdvertisedURL is how other instances reach this one; the group
	// leader tells every member which URL owns which partition.
	AdvertisedURL string
	// ClusterSecret, shared by every instance (CLUSTER_SECRET), proves
	// the advertised URLs in the group: see ownershipBalancer. Empty:
	// URLs are taken at their word.
	ClusterSecret []byte
	// Partitions is the partition count of every topic.
	Partitions int32
	// Store is the local state store; the stage owns writes to it.
	Store store.Store
	// MaxBatch bounds the records of one transaction (default 1000).
	MaxBatch int
	// Lanes is how many transactions each stage keeps in flight on one
	// instance (default 1): each lane is a member of the stage's group
	// with its own transactional producer, processing the partitions it
	// is assigned. More lanes overlap one batch's commit with the next
	// batch's work on other partitions (docs/performance.md); each costs
	// a Kafka client and a group member. Past the partitions an instance
	// owns, a lane has nothing to do.
	Lanes int
	// Overlap keeps two transactions of each lane in flight: the next
	// batch is decided and produced, with its offsets, while the last
	// one's commit is on its way, by a second transactional producer
	// (transactional id suffixed ".overlap"), and it commits right after
	// it. This hides a commit's round trips, which bound a lane's
	// throughput on a replicated cluster (docs/performance.md). The
	// exactly-once argument is in docs/architecture.md.
	Overlap bool
	// Linger is how long a transaction may wait for more records after
	// its first one, up to MaxBatch (default 0: take what has arrived).
	Linger time.Duration
	// SessionTimeout is how long the group waits for a member that
	// stopped heartbeating (a crashed instance) before moving its
	// partitions (default 10s). A restarted instance rejoins at once.
	SessionTimeout time.Duration
	// StallTimeout is how long a stage may have input waiting, or one
	// batch in progress, without committing before Health reports it
	// (default 30s); and how long a restore may read nothing, or wait for
	// a transaction open on a changelog, before its session gives up.
	StallTimeout time.Duration
	// OutcomeCacheBytes bounds the memory an Outcomes follower keeps of
	// recent outcomes (default 64 MiB).
	OutcomeCacheBytes int64
	// Logger receives the logs (default slog.Default()).
	Logger *slog.Logger
	// ClientOpts are appended to the options of every Kafka client.
	ClientOpts []kgo.Opt
	// ClientLogLevel, when not kgo.LogLevelNone, has every client log
	// at that level to Logger (ClientLogger), a stage's clients with the
	// stage's name: which stage waited on which broker.
	ClientLogLevel kgo.LogLevel

	// silent, in a Config an App made, are the brokers any client of
	// the App found silent lately (its ClientOpts carry the hook that
	// notes them); nil elsewhere, and a stage keeps a set of its own.
	silent *silentBrokers
	// expireEvery is how long a lane waits between sweeps of expired
	// table entries (default expireEvery); tests shorten it.
	expireEvery time.Duration
	// idempotencyRetention is how long a processor's store keeps an
	// idempotency key (default IdempotencyRetention); tests shorten it.
	idempotencyRetention time.Duration
	// BeforeCommit, when set, runs after a batch is produced and before
	// its transaction is committed; an error aborts the transaction. It
	// lets tests inject a failure at the worst moment.
	BeforeCommit func(ctx context.Context) error
	// Observer, when set, is told what the stages do (metrics).
	Observer Observer
	// Retryable, when set, tells a decode error that may pass on retry
	// (the schema registry could not be asked) from a malformed record:
	// the batch is aborted and retried instead of rejecting the command.
	Retryable func(error) bool
}

// Observer is told what stages and processors do; the metrics adapter
// implements it. Methods must be fast and safe for concurrent use.
type Observer interface {
	// Transaction reports a transaction of a stage that consumed records:
	// committed, or aborted (by a failure or a rebalance).
	Transaction(stage string, records int, committed bool, took time.Duration)
	// Lag reports how many records of an input partition wait.
	Lag(stage, topic string, partition int32, lag int64)
	// Restored reports changelog records restored into a stage's store.
	Restored(stage string, records int64)
	// Command reports a processed command: its type ("unknown" when it
	// could not be decoded), "accepted" or "rejected", and the rejection
	// code.
	Command(aggregate, typ, status, code string)
	// Poisoned reports an input record a stage gave up on and
	// quarantined, or a command refused because its aggregate's stored
	// state is corrupt; kind is one of the Poison* constants or
	// CodeCorruptState.
	Poisoned(stage, kind string)
	// Fenced reports a transaction a member that left the stage's group
	// had left open, ended by this instance (fenceDeparted): an
	// instance of the service died or froze and did not come back.
	Fenced(stage string)
}

type nopObserver struct{}

func (nopObserver) Transaction(string, int, bool, time.Duration) {}
func (nopObserver) Lag(string, string, int32, int64)             {}
func (nopObserver) Restored(string, int64)                       {}
func (nopObserver) Command(string, string, string, string)       {}
func (nopObserver) Poisoned(string, string)                      {}
func (nopObserver) Fenced(string)                                {}

// seeds are the bootstrap servers for a new client of a stage or an App:
// Brokers less those found silent lately (silentBrokers.seeds).
func (c Config) seeds() []string {
	if c.silent == nil {
		return c.Brokers
	}
	return c.silent.seeds(c.Brokers)
}

func (c *Config) defaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.Lanes <= 0 {
		c.Lanes = 1
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 30 * time.Second
	}
	if c.OutcomeCacheBytes <= 0 {
		c.OutcomeCacheBytes = 64 << 20
	}
	if c.expireEvery <= 0 {
		c.expireEvery = expireEvery
	}
	if c.idempotencyRetention <= 0 {
		c.idempotencyRetention = IdempotencyRetention
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
}

// Errors of queries against a stage's store.
var (
	// ErrNotFound: no value with that key.
	ErrNotFound = errors.New("not found")
	// ErrRestoring: the key's partition is being caught up, or has no
	// owner yet (the group is forming, or Kafka cannot be reached); retry
	// soon.
	ErrRestoring = errors.New("partition is restoring or has no owner yet")
	// ErrNotOwner: another instance owns the key's partition.
	ErrNotOwner = errors.New("partition is owned by another instance")
)

// PartitionState is what an instance does with a partition.
type PartitionState int

// Partition states.
const (
	NotOwned PartitionState = iota
	Restoring
	Ready
)

// String implements fmt.Stringer.
func (s PartitionState) String() string {
	return [...]string{"not-owned", "restoring", "ready"}[s]
}
