package eskafka

import "github.com/twmb/franz-go/pkg/kgo"

// MemberBalancer returns the group balancer an instance with this
// advertised URL, instance id and cluster secret joins its groups with:
// tests join a processor's group with it as a rogue process would.
func MemberBalancer(url, instanceID string, secret []byte) kgo.GroupBalancer {
	return newOwnershipBalancer(Config{AdvertisedURL: url, InstanceID: instanceID, ClusterSecret: secret}, nil, nil, nil)
}
