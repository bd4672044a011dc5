package eskafka

import (
	"crypto/sha256"
	"testing"
	"time"
)

// Dedup values of every format are read: the current one with its time,
// the one before without (never expired locally), the first one with no
// fingerprint (taken as a match).
func TestDedupValueFormats(t *testing.T) {
	fp := sha256.Sum256([]byte("command"))
	other := sha256.Sum256([]byte("another command"))
	at := time.UnixMilli(1_700_000_000_123)
	v := sealDedup([]byte("outcome"), fp, at)
	if got, same := openDedup(v, fp); !same || string(got) != "outcome" {
		t.Fatalf("current format: %q %v", got, same)
	}
	if _, same := openDedup(v, other); same {
		t.Fatal("current format: another fingerprint matched")
	}
	if got, ok := dedupWritten(v); !ok || !got.Equal(at) {
		t.Fatalf("current format: written %v %v, want %v", got, ok, at)
	}
	v1 := append(append([]byte(dedupMagicV1), fp[:]...), "outcome"...)
	if got, same := openDedup(v1, fp); !same || string(got) != "outcome" {
		t.Fatalf("format 1: %q %v", got, same)
	}
	if _, same := openDedup(v1, other); same {
		t.Fatal("format 1: another fingerprint matched")
	}
	if _, ok := dedupWritten(v1); ok {
		t.Fatal("format 1 has no time")
	}
	if got, same := openDedup([]byte("outcome"), other); !same || string(got) != "outcome" {
		t.Fatalf("first format: %q %v", got, same)
	}
	p := &Processor[int, int, int]{cfg: Config{idempotencyRetention: time.Hour}}
	if p.dedupExpired(v, at.Add(59*time.Minute)) || !p.dedupExpired(v, at.Add(time.Hour)) || p.dedupExpired(v1, at.Add(1000*time.Hour)) {
		t.Fatal("expiry at the retention: wrong")
	}
}
