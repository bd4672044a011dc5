package kafkatest

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LaggingCluster is a kfake cluster of three brokers where a created topic
// is known at first only to the broker that handled its creation: the
// others answer UNKNOWN_TOPIC_OR_PARTITION for it, to metadata and to
// describe-configs requests, until lag has passed, as brokers of a real
// cluster do until the new topic's metadata reaches them.
type LaggingCluster struct {
	*kfake.Cluster
	lag time.Duration

	mu      sync.Mutex
	knownBy map[string]int32     // new topic -> the broker that created it
	learnAt map[string]time.Time // new topic -> when every broker knows it
}

// NewLaggingCluster starts a LaggingCluster whose brokers learn of a new
// topic lag after its creation; it stops when the test ends.
func NewLaggingCluster(t testing.TB, lag time.Duration) *LaggingCluster {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	c := &LaggingCluster{Cluster: kc, lag: lag, knownBy: map[string]int32{}, learnAt: map[string]time.Time{}}
	kc.ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, rt := range req.(*kmsg.CreateTopicsRequest).Topics {
			if _, ok := c.knownBy[rt.Topic]; !ok {
				c.knownBy[rt.Topic] = kc.CurrentNode()
				c.learnAt[rt.Topic] = time.Now().Add(c.lag)
			}
		}
		return nil, nil, false // created as usual
	})
	kc.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		return c.metadata(req.(*kmsg.MetadataRequest))
	})
	kc.ControlKey(int16(kmsg.DescribeConfigs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		return c.describeConfigs(req.(*kmsg.DescribeConfigsRequest))
	})
	return c
}

// unknownHere reports whether the broker handling the current request does
// not know topic yet.
func (c *LaggingCluster) unknownHere(topic string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	by, ok := c.knownBy[topic]
	return ok && by != c.CurrentNode() && time.Now().Before(c.learnAt[topic])
}

// KnownEverywhere reports whether every broker knows topic now (a topic
// not created through the cluster counts as known).
func (c *LaggingCluster) KnownEverywhere(topic string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.learnAt[topic]
	return !ok || !time.Now().Before(at)
}

// metadata answers, on a broker that does not know every requested topic
// yet, with the brokers and UNKNOWN_TOPIC_OR_PARTITION for the topics it
// does not know. Requests for all topics, or that name an old topic, are
// left to kfake.
func (c *LaggingCluster) metadata(req *kmsg.MetadataRequest) (kmsg.Response, error, bool) {
	if req.Topics == nil {
		return nil, nil, false
	}
	unknown := 0
	for _, rt := range req.Topics {
		if rt.Topic != nil && c.unknownHere(*rt.Topic) {
			unknown++
		}
	}
	if unknown == 0 || unknown != len(req.Topics) {
		return nil, nil, false
	}
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.ControllerID = 0
	for i, addr := range c.ListenAddrs() {
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = int32(i), host, int32(p)
		resp.Brokers = append(resp.Brokers, b)
	}
	for _, rt := range req.Topics {
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = rt.Topic
		t.ErrorCode = kerr.UnknownTopicOrPartition.Code
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil, true
}

// describeConfigs answers UNKNOWN_TOPIC_OR_PARTITION for the topics the
// broker does not know yet, when it knows none of those asked.
func (c *LaggingCluster) describeConfigs(req *kmsg.DescribeConfigsRequest) (kmsg.Response, error, bool) {
	unknown := 0
	for _, r := range req.Resources {
		if r.ResourceType == kmsg.ConfigResourceTypeTopic && c.unknownHere(r.ResourceName) {
			unknown++
		}
	}
	if unknown == 0 || unknown != len(req.Resources) {
		return nil, nil, false
	}
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, r := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		rr.ErrorCode = kerr.UnknownTopicOrPartition.Code
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil, true
}
