package eskafka

import (
	"fmt"
	"slices"
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
	busySince  map[int]time.Time // lane -> start of its batch in progress
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

func (s *Stage) beginBusy(lane int, t time.Time) {
	h := &s.health
	h.mu.Lock()
	if h.busySince == nil {
		h.busySince = map[int]time.Time{}
	}
	h.busySince[lane] = t
	h.mu.Unlock()
}

func (s *Stage) endBusy(lane int) {
	h := &s.health
	h.mu.Lock()
	delete(h.busySince, lane)
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

// clearLag forgets the lag of the input partitions parts (a lane's, whose
// session ended).
func (s *Stage) clearLag(parts []int32) {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	for tp := range h.lag {
		if slices.Contains(parts, tp.Partition) {
			delete(h.lag, tp)
		}
	}
	if len(h.lag) == 0 {
		h.lagSince = time.Time{}
	}
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
	var busySince time.Time
	for _, t := range h.busySince {
		if busySince.IsZero() || t.Before(busySince) {
			busySince = t
		}
	}
	switch {
	case !busySince.IsZero() && now.Sub(busySince) > s.cfg.StallTimeout:
		return fmt.Errorf("stage %s has been committing one batch for %s", s.spec.Name, now.Sub(busySince).Round(time.Millisecond))
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
