// Package embedded runs an in-process Kafka broker (franz-go's kfake) so
// that the service runs on a laptop with no setup. It persists its log under
// a directory, so data survives restarts, and listens on a real TCP address
// so that kcat, rpk and other instances can use it.
package embedded

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	addr string
}

// Start starts a single-node broker listening on addr ("host:port"; port 0
// picks a free one). dir, if not empty, holds its data.
func Start(addr, dir string) (*Broker, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker port %q: %w", portStr, err)
	}
	if port == 0 {
		// kfake needs the port up front: reserve a free one.
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", host, err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.ListenFn(func(network, a string) (net.Listener, error) {
			_, p, _ := net.SplitHostPort(a)
			return net.Listen(network, net.JoinHostPort(host, p))
		}),
		kfake.ClusterID("catalog-embedded"),
		// Let tests and laptops rebalance quickly after a crash.
		kfake.GroupMinSessionTimeout(time.Second),
		kfake.BrokerConfigs(map[string]string{"transaction.max.timeout.ms": "900000"}),
	}
	if dir != "" {
		opts = append(opts, kfake.DataDir(dir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s: %w", addr, err)
	}
	return &Broker{c: c, addr: c.ListenAddrs()[0]}, nil
}

// Addr returns the broker's bootstrap address.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker, flushing its data.
func (b *Broker) Close() { b.c.Close() }
