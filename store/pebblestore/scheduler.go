package pebblestore

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// grantEvery is how often a scheduler looks again at the DB's allowed
// compactions while one runs or waits: Pebble's own interval.
const grantEvery = 100 * time.Millisecond

// scheduler is a store's compaction scheduler: Pebble's default
// (ConcurrencyLimitScheduler) grants up to the DB's allowed concurrency
// and samples that value every 100 ms for ever, because it can rise (a
// backlog grows) without the DB asking again. The service opens four
// stores, and those wake-ups were about 0.3% of a core of an idle
// instance, a third of its idle CPU (docs/performance.md). This one grants
// the same way but samples only while a compaction runs or one was refused:
// with none of either, nothing waits for the value to rise, and the DB
// asks again (TrySchedule) when it wants a compaction.
type scheduler struct {
	db pebble.DBForCompaction

	mu           sync.Mutex
	turn         *sync.Cond // signalled when granting ends
	running      int        // compactions granted and not done
	waiting      bool       // the DB has a compaction it was not granted
	granting     bool       // a goroutine is in grant (one at a time)
	unregistered bool
	lastAllowed  int

	poke chan struct{} // wakes loop: a change worth a look
	stop chan struct{}
	done chan struct{}
}

var _ pebble.CompactionScheduler = (*scheduler)(nil)

func newScheduler() *scheduler {
	s := &scheduler{poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.turn = sync.NewCond(&s.mu)
	return s
}

// Register implements pebble.CompactionScheduler.
func (s *scheduler) Register(_ int, db pebble.DBForCompaction) {
	s.db = db
	go s.loop()
}

// Unregister implements pebble.CompactionScheduler: no grant happens
// after it returns.
func (s *scheduler) Unregister() {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unregistered = true
	for s.granting {
		s.turn.Wait()
	}
}

// TrySchedule implements pebble.CompactionScheduler.
func (s *scheduler) TrySchedule() (bool, pebble.CompactionGrantHandle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unregistered {
		return false, nil
	}
	// Either way there is now something to sample for: a compaction
	// running, or one waiting for a grant.
	defer s.wake()
	s.lastAllowed = s.db.GetAllowedWithoutPermission()
	if s.lastAllowed > s.running {
		s.running++
		return true, s
	}
	s.waiting = true
	return false, nil
}

// UpdateGetAllowedWithoutPermission implements pebble.CompactionScheduler.
func (s *scheduler) UpdateGetAllowedWithoutPermission() {
	s.mu.Lock()
	allowed := s.db.GetAllowedWithoutPermission()
	rose := allowed > s.lastAllowed
	s.lastAllowed = allowed
	s.mu.Unlock()
	if rose {
		s.wake()
	}
}

// Started implements pebble.CompactionGrantHandle.
func (s *scheduler) Started() {}

// MeasureCPU implements pebble.CompactionGrantHandle.
func (s *scheduler) MeasureCPU(pebble.CompactionGoroutineKind) {}

// CumulativeStats implements pebble.CompactionGrantHandle.
func (s *scheduler) CumulativeStats(pebble.CompactionGrantHandleStats) {}

// Done implements pebble.CompactionGrantHandle.
func (s *scheduler) Done() {
	s.mu.Lock()
	s.running--
	s.mu.Unlock()
	s.grant()
}

// wake has loop look now, without blocking.
func (s *scheduler) wake() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// loop grants when poked, and every grantEvery while a compaction runs or
// waits.
func (s *scheduler) loop() {
	defer close(s.done)
	t := time.NewTimer(grantEvery)
	t.Stop()
	for {
		s.mu.Lock()
		active := s.running > 0 || s.waiting
		s.mu.Unlock()
		var tick <-chan time.Time
		if active {
			t.Reset(grantEvery)
			tick = t.C
		}
		select {
		case <-tick:
		case <-s.poke:
			t.Stop()
		case <-s.stop:
			t.Stop()
			return
		}
		s.grant()
	}
}

// grant offers the DB as many compactions as it allows beyond those
// running, one granting goroutine at a time, as Pebble's scheduler does.
func (s *scheduler) grant() {
	s.mu.Lock()
	for s.granting && !s.unregistered {
		s.turn.Wait()
	}
	if s.unregistered {
		s.mu.Unlock()
		return
	}
	s.lastAllowed = s.db.GetAllowedWithoutPermission()
	toGrant := s.lastAllowed - s.running
	if toGrant <= 0 {
		s.mu.Unlock()
		return
	}
	s.granting = true
	s.mu.Unlock()
	waiting := true
	for ; toGrant > 0; toGrant-- {
		// Asked only when a grant is possible: the DB builds the
		// compaction it would run.
		if w, _ := s.db.GetWaitingCompaction(); !w || !s.db.Schedule(s) {
			waiting = false
			break
		}
		s.mu.Lock()
		s.running++
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.waiting = waiting
	s.granting = false
	s.turn.Broadcast()
	s.mu.Unlock()
}
