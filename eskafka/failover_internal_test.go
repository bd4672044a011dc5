package eskafka

import (
	"fmt"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A seed that let a request time out is left out of the next sessions'
// bootstrap servers for a while, unless every seed did.
func TestSilentBrokersLeftOutOfSeeds(t *testing.T) {
	now := time.Unix(1000, 0)
	b := &silentBrokers{now: func() time.Time { return now }}
	seeds := []string{"10.0.0.1:9092", "10.0.0.2:9092", "10.0.0.3:9092"}
	timeout := fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)

	b.OnBrokerRead(kgo.BrokerMetadata{Host: "10.0.0.2", Port: 9092}, 0, 0, 0, 0, nil)
	b.OnBrokerRead(kgo.BrokerMetadata{Host: "10.0.0.3", Port: 9092}, 0, 0, 0, 0, fmt.Errorf("connection reset"))
	if got := b.seeds(seeds); !slices.Equal(got, seeds) {
		t.Fatalf("no timeout yet: seeds %v", got)
	}
	b.OnBrokerRead(kgo.BrokerMetadata{Host: "10.0.0.2", Port: 9092}, 0, 0, 0, 0, timeout)
	if got, want := b.seeds(seeds), []string{"10.0.0.1:9092", "10.0.0.3:9092"}; !slices.Equal(got, want) {
		t.Fatalf("after a timeout of 10.0.0.2: seeds %v, want %v", got, want)
	}
	b.OnBrokerRead(kgo.BrokerMetadata{Host: "10.0.0.1", Port: 9092}, 0, 0, 0, 0, timeout)
	b.OnBrokerRead(kgo.BrokerMetadata{Host: "10.0.0.3", Port: 9092}, 0, 0, 0, 0, timeout)
	if got := b.seeds(seeds); !slices.Equal(got, seeds) {
		t.Fatalf("every seed silent: seeds %v, want all of them", got)
	}
	now = now.Add(unresponsiveFor)
	if got := b.seeds(seeds); !slices.Equal(got, seeds) {
		t.Fatalf("after %v: seeds %v, want all of them again", unresponsiveFor, got)
	}
	// A dial that times out counts as well.
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}
	b.OnBrokerConnect(kgo.BrokerMetadata{Host: "10.0.0.3", Port: 9092}, 0, nil, dialTimeout)
	if got, want := b.seeds(seeds), []string{"10.0.0.1:9092", "10.0.0.2:9092"}; !slices.Equal(got, want) {
		t.Fatalf("after a dial timeout of 10.0.0.3: seeds %v, want %v", got, want)
	}
	now = now.Add(unresponsiveFor)
	if got := b.seeds(seeds); !slices.Equal(got, seeds) {
		t.Fatalf("after %v: seeds %v, want all of them again", unresponsiveFor, got)
	}
	// So does a refused connection (a killed broker), not other dial
	// errors (a name that does not resolve is no broker's state).
	b.OnBrokerConnect(kgo.BrokerMetadata{Host: "10.0.0.1", Port: 9092}, 0, nil, &net.DNSError{Err: "no such host", Name: "x"})
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	b.OnBrokerConnect(kgo.BrokerMetadata{Host: "10.0.0.2", Port: 9092}, 0, nil, refused)
	if got, want := b.seeds(seeds), []string{"10.0.0.1:9092", "10.0.0.3:9092"}; !slices.Equal(got, want) {
		t.Fatalf("after 10.0.0.2 refused a connection: seeds %v, want %v", got, want)
	}
	now = now.Add(unresponsiveFor)
	if got := b.seeds(seeds); !slices.Equal(got, seeds) {
		t.Fatalf("after %v: seeds %v, want all of them again", unresponsiveFor, got)
	}
	if len(b.silent) != 0 {
		t.Fatalf("expired entries kept: %v", b.silent)
	}
}

// timeoutErr is a net.Error that timed out (as a dial that did).
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
