package eskafka

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bookscatalog/catalog/store"
)

// failuresUnhealthy is how many failures in a row, of batches or sessions,
// make a stage report itself unhealthy.
const failuresUnhealthy = 3

// health is what a stage knows of its own progress, for readiness.
type health struct {
	commits atomic.Int64 // committed transactions, ever

	mu         sync.Mutex
	failures   int // failed batches or sessions since the last commit
	lastErr    error
	lastCommit time.Time
	busySince  time.Time // start of the batch in progress
	lag        map[store.TopicPartition]int64
	lagSince   time.Time // since when some input partition has lag
}

func (s *Stage) noteCommit() {
	s.health.commits.Add(1)
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures, h.lastErr, h.lastCommit = 0, nil, time.Now()
}

// noteFailure counts a failed batch or session.
func (s *Stage) noteFailure(err error) {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures++
	h.lastErr = err
}

func (s *Stage) beginBusy(t time.Time) {
	h := &s.health
	h.mu.Lock()
	h.busySince = t
	h.mu.Unlock()
}

func (s *Stage) endBusy() {
	h := &s.health
	h.mu.Lock()
	h.busySince = time.Time{}
	h.mu.Unlock()
}

// noteLag records the lag of an input partition as of a fetch. A lag of
// one is caught up: on a transactional input the high watermark counts
// the commit marker after the last record.
func (s *Stage) noteLag(topic string, partition int32, lag int64) {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lag == nil {
		h.lag = map[store.TopicPartition]int64{}
	}
	tp := store.TopicPartition{Topic: topic, Partition: partition}
	if lag > 1 {
		h.lag[tp] = lag
		if h.lagSince.IsZero() {
			h.lagSince = time.Now()
		}
		return
	}
	delete(h.lag, tp)
	if len(h.lag) == 0 {
		h.lagSince = time.Time{}
	}
}

func (s *Stage) clearLag() {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.lag)
	h.lagSince = time.Time{}
}

// Health returns nil while the stage makes progress, else why not: its
// batches or sessions failed several times in a row, a batch has been in
// progress for longer than the stall timeout, or input has been waiting
// that long with no commit.
func (s *Stage) Health() error {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	switch {
	case !h.busySince.IsZero() && now.Sub(h.busySince) > s.cfg.StallTimeout:
		return fmt.Errorf("stage %s has been committing one batch for %s", s.spec.Name, now.Sub(h.busySince).Round(time.Millisecond))
	case h.failures >= failuresUnhealthy:
		return fmt.Errorf("stage %s failed %d times in a row: %v", s.spec.Name, h.failures, h.lastErr)
	case !h.lagSince.IsZero() && now.Sub(later(h.lagSince, h.lastCommit)) > s.cfg.StallTimeout:
		return fmt.Errorf("stage %s has input waiting and has not committed for %s", s.spec.Name, now.Sub(later(h.lagSince, h.lastCommit)).Round(time.Millisecond))
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
