package eskafka_test

import (
	"crypto/rand"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookscatalog/catalog/eskafka"
)

// PartitionFor agrees with franz-go's default partitioner (Kafka's murmur2)
// on every key length and partition count.
func TestPartitionForMatchesKafka(t *testing.T) {
	kafka := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	keys := []string{"", "a", "ab", "abc", "abcd", "jane-austen", "e0016fec-cf88-429e-99a8-76504e494f60"}
	for i := range 2000 {
		b := make([]byte, i%37)
		_, _ = rand.Read(b)
		keys = append(keys, string(b))
	}
	for _, n := range []int32{1, 3, 6, 7, 100, 10000} {
		for _, k := range keys {
			if got, want := eskafka.PartitionFor(k, n), int32(kafka.Partition(&kgo.Record{Key: []byte(k)}, int(n))); got != want {
				t.Fatalf("PartitionFor(%q, %d) = %d, Kafka's partitioner says %d", k, n, got, want)
			}
		}
	}
}

func BenchmarkPartitionFor(b *testing.B) {
	for b.Loop() {
		eskafka.PartitionFor("e0016fec-cf88-429e-99a8-76504e494f60", 6)
	}
}
