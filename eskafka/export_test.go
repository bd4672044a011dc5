package eskafka

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// MemberBalancer returns the group balancer an instance with this
// advertised URL, instance id and cluster secret joins its groups with:
// tests join a processor's group with it as a rogue process would.
func MemberBalancer(url, instanceID string, secret []byte) kgo.GroupBalancer {
	return newOwnershipBalancer(Config{AdvertisedURL: url, InstanceID: instanceID, ClusterSecret: secret}, nil, nil, nil)
}

// ShortExpiry returns cfg with a processor's idempotency keys kept for
// retention and its stages sweeping expired entries every every.
func ShortExpiry(cfg Config, retention, every time.Duration) Config {
	cfg.idempotencyRetention, cfg.expireEvery = retention, every
	return cfg
}
