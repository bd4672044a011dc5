package eskafka

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A broker that stops answering without closing its sockets (a process
// frozen by SIGSTOP, a long GC pause, a half-dead host) is the hardest
// failure for a client: connecting still succeeds, and a request sent to it
// waits until its deadline. franz-go's defaults give every request a 10 s
// overhead on top of its own timeout (20 s for a produce), and it keeps
// sending a transaction's requests to the coordinator it knows until that
// coordinator answers NOT_COORDINATOR, which a frozen one never does: the
// cluster fences the broker and moves its leaderships and coordinators in
// about 10 s, but a stage would go on waiting for the frozen one
// (docs/reliability.md). So the runtime's clients wait less for one
// request, and a stage whose commit does not finish in time gives its
// session up and starts a new one, which looks the coordinator up again.
const (
	// requestTimeoutOverhead bounds how long a request waits for its
	// answer beyond the time the request itself gives the broker. A
	// healthy broker answers in milliseconds, a loaded one in well under
	// a second.
	requestTimeoutOverhead = 2 * time.Second
	// produceRequestTimeout is how long a broker may wait for the
	// in-sync replicas of a produce (acks=all) before answering
	// REQUEST_TIMED_OUT, which the idempotent producer retries safely.
	produceRequestTimeout = 2 * time.Second
	// fetchMaxWait is how long a broker holds a fetch with no new data.
	// A fetch in flight to a frozen leader holds its partitions until
	// this plus the overhead, even after the leadership has moved.
	fetchMaxWait = 2 * time.Second
	// dialTimeout bounds a connection attempt. A frozen broker's kernel
	// completes handshakes only until its listen backlog fills; after
	// that a dial waits out franz-go's 10 s default. Until the cluster
	// fences it, a frozen broker is still named as coordinator and
	// leader, each lookup that picks it costs a dial, and the requests
	// queued for it wait one dial each: with 3 s, a group's JoinGroup in
	// the chaos test failed its dials until 7.7 s after the fence. A dial
	// within a data centre takes milliseconds, a TLS handshake tens.
	dialTimeout = time.Second
	// metadataMinAge is how soon after a refresh the cluster metadata
	// may be asked again when a request fails: franz-go's 5 s default
	// keeps a client on a fenced leader that long after the first
	// timeout, and delays its retry of a produce answered
	// CONCURRENT_TRANSACTIONS (docs/performance.md).
	metadataMinAge = 100 * time.Millisecond
	// commitDeadline bounds a batch's flush and commit. A commit on a
	// healthy cluster takes milliseconds to a second; past this, the
	// session is presumed stuck on a broker that stopped answering.
	commitDeadline = 6 * time.Second
	// setupDeadline bounds what a new session asks before it consumes:
	// the topics' size limits and the producer id from the transaction
	// coordinator.
	setupDeadline = 4 * time.Second
	// closeDeadline bounds how long a failed session's client is waited
	// for when closed: a client stuck on a frozen broker is left to
	// finish by itself; its transactional id is fenced by the next
	// session's.
	closeDeadline = 3 * time.Second
	// maxRetryBackoff caps how long a client waits before it tries a
	// failed request or fetch again (franz-go's default grows to 5 s).
	// A consumer whose leader died asks for metadata only when a fetch
	// backoff begins: with backoffs of 4–5 s, an outcome follower kept
	// fetching from a killed leader 3.8 s after the cluster had moved
	// the partition, and a write waited that long for its outcome.
	maxRetryBackoff = time.Second
)

// retryBackoff is 100 ms doubled per failed try up to maxRetryBackoff,
// within ±20% so that clients failing together do not retry together.
func retryBackoff(tries int) time.Duration {
	d := maxRetryBackoff
	if tries < 5 {
		d = min(maxRetryBackoff, 100*time.Millisecond<<max(tries-1, 0))
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// MaxBatchBytes bounds what one fetched record batch may decompress to
// (kgo.MaxDecompressBatchBytes; franz-go's default is 1 GiB). A batch
// fits the topic's max.message.bytes compressed, but a few dozen KiB of
// zstd can describe a gigabyte, which franz-go allocates at once: a fetch
// of such batches would hold tens of GiB. 64 MiB is far above any batch
// the runtime or a Kafka producer with default settings writes; a batch
// past it is skipped and dead-lettered where a stage reads it (see the
// stage's skip).
const MaxBatchBytes = 64 << 20

// FailoverOpts are the request timeouts of every Kafka client of the
// runtime, so that one broker that stops answering holds a request for a
// few seconds instead of twenty, and the bound on a fetched batch
// (MaxBatchBytes). Services use them for their own clients on the write
// path (the command producer) too.
func FailoverOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.MaxDecompressBatchBytes(MaxBatchBytes),
		kgo.RequestTimeoutOverhead(requestTimeoutOverhead),
		kgo.ProduceRequestTimeout(produceRequestTimeout),
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.MetadataMinAge(metadataMinAge),
		kgo.DialTimeout(dialTimeout),
		kgo.RetryBackoffFn(retryBackoff),
	}
}

// newClient returns a client of the runtime with opts (clientOpts).
func (c Config) newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(c.clientOpts(opts...)...)
}

// clientOpts are the options of a client of the runtime: FailoverOpts,
// bootstrapped from the brokers not silent lately (seeds), with opts, then
// ClientOpts. FailoverOpts also lowers MetadataMinAge: franz-go retries a
// produce answered CONCURRENT_TRANSACTIONS (the previous transaction's
// markers are still being written, frequent on a replicated cluster) only
// after a metadata refresh, at most one per MetadataMinAge, whose 5 s
// default stalls writes for seconds (docs/performance.md).
func (c Config) clientOpts(opts ...kgo.Opt) []kgo.Opt {
	all := append(FailoverOpts(), kgo.SeedBrokers(c.seeds()...))
	all = append(all, opts...)
	return append(all, c.ClientOpts...)
}

// errSessionStuck marks a session given up because a commit or its setup
// did not finish in time: the stage starts the next one at once.
var errSessionStuck = errors.New("session stuck on a broker that does not answer")

// closeBounded closes a client, waiting at most closeDeadline for it.
func closeBounded(closeFn func(), log interface{ Warn(string, ...any) }) {
	done := make(chan struct{})
	go func() {
		closeFn()
		close(done)
	}()
	t := time.NewTimer(closeDeadline)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		log.Warn("a Kafka client is slow to close (a broker does not answer); leaving it to finish in the background")
	}
}

// stuck wraps err with what failed, and as errSessionStuck when ctx's
// deadline passed.
func stuck(ctx context.Context, what string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w (%w)", what, errSessionStuck, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// unresponsiveFor is how long a broker that let a request time out is left
// out of a new session's bootstrap servers.
const unresponsiveFor = 30 * time.Second

// silentBrokers remembers the brokers that let a request time out or
// refused a connection. A new client starts from its bootstrap servers,
// and franz-go tries a seed twice before the next: a frozen broker among
// them costs a new session twice the request timeout before it has even
// found its coordinator, long after the cluster has fenced that broker.
// So a new session starts from the other seeds while one was silent
// lately (all of them if every one was).
type silentBrokers struct {
	mu     sync.Mutex
	silent map[string]time.Time // host:port -> when it last timed out or refused
	now    func() time.Time
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (b *silentBrokers) OnBrokerRead(meta kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	b.note(meta, err)
}

// OnBrokerConnect implements kgo.HookBrokerConnect: a dial that times out
// is a broker that does not answer too, and one refused is a broker that
// is down (killed, not fenced yet): franz-go sends a request for "any
// broker" to its seeds in turn, and a new session's first requests would
// keep finding it.
func (b *silentBrokers) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	b.note(meta, err)
}

// note remembers meta's broker as silent if err is a timeout or a refused
// connection.
func (b *silentBrokers) note(meta kgo.BrokerMetadata, err error) {
	var nerr net.Error
	timedOut := errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout()
	if err == nil || !timedOut && !errors.Is(err, syscall.ECONNREFUSED) {
		return
	}
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.silent == nil {
		b.silent = map[string]time.Time{}
	}
	b.silent[addr] = b.clock()
}

func (b *silentBrokers) clock() time.Time {
	if b.now != nil {
		return b.now()
	}
	return time.Now()
}

// seeds returns the brokers of seeds that were not silent lately, in
// order (franz-go starts from a random one). On a busy cluster a live
// broker lets a request time out now and then too (an EndTxn waiting on
// markers for a frozen broker, a produce waiting for it to leave the
// ISR), so every seed may have been silent lately; then only the most
// recently silent is left out, the one a frozen broker keeps being.
func (b *silentBrokers) seeds(seeds []string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock()
	for addr, at := range b.silent {
		if now.Sub(at) >= unresponsiveFor {
			delete(b.silent, addr)
		}
	}
	var out []string
	latest := ""
	for _, s := range seeds {
		at, ok := b.silent[s]
		if !ok {
			out = append(out, s)
		} else if latest == "" || at.After(b.silent[latest]) {
			latest = s
		}
	}
	switch {
	case len(out) > 0:
		return out
	case len(seeds) < 2:
		return seeds
	}
	for _, s := range seeds {
		if s != latest {
			out = append(out, s)
		}
	}
	return out
}
