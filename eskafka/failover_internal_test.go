package eskafka

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A seed that let a request time out is left out of the next sessions'
// bootstrap servers for a while; when every seed did, the most recently
// silent one is.
func TestSilentBrokersLeftOutOfSeeds(t *testing.T) {
	now := time.Unix(1000, 0)
	b := &silentBrokers{now: func() time.Time { return now }}
	seeds := []string{"10.0.0.1:9092", "10.0.0.2:9092", "10.0.0.3:9092"}
	// want checks the seeds a new session gets (all of them when want
	// names none).
	want := func(after string, want ...string) {
		t.Helper()
		if want == nil {
			want = seeds
		}
		if got := b.seeds(seeds); !slices.Equal(got, want) {
			t.Fatalf("after %s: seeds %v, want %v", after, got, want)
		}
	}
	expire := func() {
		t.Helper()
		now = now.Add(unresponsiveFor)
		want(unresponsiveFor.String())
	}
	broker := func(host string) kgo.BrokerMetadata { return kgo.BrokerMetadata{Host: host, Port: 9092} }
	timeout := fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)

	b.OnBrokerRead(broker("10.0.0.2"), 0, 0, 0, 0, nil)
	b.OnBrokerRead(broker("10.0.0.3"), 0, 0, 0, 0, fmt.Errorf("connection reset"))
	want("no timeout")
	b.OnBrokerRead(broker("10.0.0.1"), 0, 0, 0, 0, timeout)
	want("a timeout of 10.0.0.1", "10.0.0.2:9092", "10.0.0.3:9092")
	// Every seed silent lately: a frozen broker is the one that keeps
	// timing out, and it is still left out.
	now = now.Add(time.Second)
	b.OnBrokerRead(broker("10.0.0.3"), 0, 0, 0, 0, timeout)
	now = now.Add(time.Second)
	b.OnBrokerRead(broker("10.0.0.2"), 0, 0, 0, 0, timeout)
	now = now.Add(time.Second)
	b.OnBrokerRead(broker("10.0.0.1"), 0, 0, 0, 0, timeout)
	want("every seed timed out, 10.0.0.1 last", "10.0.0.2:9092", "10.0.0.3:9092")
	expire()

	// A dial that times out counts as well.
	b.OnBrokerConnect(broker("10.0.0.1"), 0, nil, &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}})
	want("a dial timeout of 10.0.0.1", "10.0.0.2:9092", "10.0.0.3:9092")
	expire()

	// So does a refused connection (a killed broker), not other dial
	// errors (a name that does not resolve is no broker's state).
	b.OnBrokerConnect(broker("10.0.0.1"), 0, nil, &net.DNSError{Err: "no such host", Name: "x"})
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	b.OnBrokerConnect(broker("10.0.0.2"), 0, nil, refused)
	want("10.0.0.2 refused a connection", "10.0.0.1:9092", "10.0.0.3:9092")
	expire()
	if len(b.silent) != 0 {
		t.Fatalf("expired entries kept: %v", b.silent)
	}
}

// timeoutErr is a net.Error that timed out (as a dial that did).
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// A broker one client of an App found down is left out of every stage's
// next sessions: here the command producer, which no stage shares a
// client with, meets a refused connection.
func TestSilentBrokersSharedByAnApp(t *testing.T) {
	c, err := kfake.NewCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // refuses connections from now on
	up := c.ListenAddrs()[0]

	a, err := NewApp(AppConfig{Config: Config{Service: "silent", Partitions: 1, InstanceID: "i1", Brokers: []string{down, up}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.producer.Close()
	stage := func(name string) *Stage {
		return NewStage(StageSpec{Name: name, Inputs: []string{name + ".in"}}, a.StageConfig(name))
	}
	one, two := stage("one"), stage("two")
	if got := one.cfg.seeds(); !slices.Equal(got, []string{down, up}) {
		t.Fatalf("before any failure, a session's seeds are %v", got)
	}
	// franz-go sends a new client's first request to its first seed.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Producer().Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Stage{one, two} {
		if got := st.cfg.seeds(); !slices.Equal(got, []string{up}) {
			t.Errorf("stage %s: after the producer found %s down, a session's seeds are %v, want [%s]", st.spec.Name, down, got, up)
		}
	}
}

// Every runtime client retries within a second: a consumer learns that
// its dead leader's partitions moved only when a fetch backoff begins.
func TestRetryBackoffIsCapped(t *testing.T) {
	prev := time.Duration(0)
	for tries := 1; tries <= 30; tries++ {
		var hi time.Duration
		for range 50 {
			d := retryBackoff(tries)
			if d <= 0 || d > maxRetryBackoff*12/10 {
				t.Fatalf("retryBackoff(%d) = %v, want in (0, %v]", tries, d, maxRetryBackoff*12/10)
			}
			hi = max(hi, d)
		}
		if tries <= 4 && hi <= prev*8/10 {
			t.Errorf("retryBackoff(%d) at most %v, not above the previous try's %v", tries, hi, prev)
		}
		prev = hi
	}
	if d := retryBackoff(1); d > 150*time.Millisecond {
		t.Errorf("first retry after %v, want about 100ms", d)
	}
}
