package loadgen

import (
	"math"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The latency histogram is log-linear, in the manner of HdrHistogram: values
// (nanoseconds) below 2*subBuckets are counted exactly; above, each power of
// two is split into subBuckets linear buckets, so a bucket is at most 1/128
// of its values wide and a reported quantile (a bucket's midpoint, clamped to
// the exact minimum and maximum) is within 0.4% of the true sample. Memory is
// fixed (about 60 KB) whatever the number of samples, and recording is one
// atomic add, so that every client records into the same histogram and the
// progress reporter can read it while the run goes on.
const (
	subBits    = 7
	subBuckets = 1 << subBits // 128
	// nBuckets covers every non-negative int64.
	nBuckets = 2*subBuckets + (63-subBits-1)*subBuckets
)

// bucketOf returns the index of the bucket holding v (v >= 0).
func bucketOf(v int64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - (subBits + 1) // >= 1
	m := v >> e                                // in [subBuckets, 2*subBuckets)
	return 2*subBuckets + (e-1)*subBuckets + int(m-subBuckets)
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 2*subBuckets {
		return int64(i), int64(i)
	}
	e := (i-2*subBuckets)/subBuckets + 1
	m := int64((i-2*subBuckets)%subBuckets + subBuckets)
	lo = m << e
	return lo, lo + (int64(1) << e) - 1
}

// histogram counts latencies; it is safe for concurrent use.
type histogram struct {
	counts [nBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Int64
	min    atomic.Int64 // valid when n > 0
	max    atomic.Int64
}

func newHistogram() *histogram {
	h := &histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// record counts one latency (negative ones count as zero).
func (h *histogram) record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(v)].Add(1)
	h.sum.Add(v)
	for {
		cur := h.min.Load()
		if v >= cur || h.min.CompareAndSwap(cur, v) {
			break
		}
	}
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			break
		}
	}
	h.n.Add(1)
}

// snapshot copies the histogram. Taken while others record, it may be off by
// the records in flight, which is fine for progress lines.
func (h *histogram) snapshot() *snapshot {
	s := &snapshot{counts: make([]uint64, nBuckets), sum: h.sum.Load(), min: h.min.Load(), max: h.max.Load()}
	for i := range h.counts {
		c := h.counts[i].Load()
		s.counts[i] = c
		s.n += c
	}
	if s.n == 0 {
		s.min, s.max = 0, 0
	}
	return s
}

// snapshot is a point-in-time copy of a histogram.
type snapshot struct {
	counts   []uint64
	n        uint64
	sum      int64
	min, max int64
}

// since returns the records of s that prev did not have (for interval
// statistics); min and max become bucket bounds.
func (s *snapshot) since(prev *snapshot) *snapshot {
	d := &snapshot{counts: make([]uint64, nBuckets), sum: s.sum - prev.sum}
	first, last := -1, -1
	for i := range s.counts {
		c := s.counts[i] - prev.counts[i]
		d.counts[i] = c
		d.n += c
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if d.n > 0 {
		d.min, _ = bucketRange(first)
		_, d.max = bucketRange(last)
	}
	return d
}

// quantile returns the nearest-rank q-quantile (0 < q <= 1): the smallest
// recorded value such that at least q of all values are at most it, to the
// histogram's precision.
func (s *snapshot) quantile(q float64) time.Duration {
	if s.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(s.n)))
	rank = min(max(rank, 1), s.n)
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return time.Duration(min(max(v, s.min), s.max))
		}
	}
	return time.Duration(s.max)
}

func (s *snapshot) mean() time.Duration {
	if s.n == 0 {
		return 0
	}
	return time.Duration(s.sum / int64(s.n))
}

// stats gathers the outcome of every request of a run.
type stats struct {
	lat       *histogram // latencies of successful requests
	requests  atomic.Int64
	successes atomic.Int64

	mu     sync.Mutex
	errors map[string]int64 // by kind
	ops    map[string]*OpCounts
}

func newStats() *stats {
	return &stats{lat: newHistogram(), errors: map[string]int64{}, ops: map[string]*OpCounts{}}
}

// add records one finished request of operation op; errKind is "" on
// success.
func (s *stats) add(op, errKind string, latency time.Duration) {
	s.requests.Add(1)
	if errKind == "" {
		s.successes.Add(1)
		s.lat.record(latency)
	}
	s.mu.Lock()
	c := s.ops[op]
	if c == nil {
		c = &OpCounts{}
		s.ops[op] = c
	}
	c.Requests++
	if errKind != "" {
		c.Errors++
		s.errors[errKind]++
	}
	s.mu.Unlock()
}

func (s *stats) errorCount() int64 { return s.requests.Load() - s.successes.Load() }

// errorKinds returns the error counts, most frequent first.
func (s *stats) errorKinds() []ErrorKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ErrorKind, 0, len(s.errors))
	for k, n := range s.errors {
		out = append(out, ErrorKind{Kind: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

func (s *stats) opCounts() map[string]OpCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]OpCounts, len(s.ops))
	for k, v := range s.ops {
		out[k] = *v
	}
	return out
}

// latencyOf summarises a snapshot in milliseconds.
func latencyOf(s *snapshot) Latency {
	return Latency{
		Min: ms(time.Duration(s.min)), Mean: ms(s.mean()),
		P50: ms(s.quantile(0.50)), P90: ms(s.quantile(0.90)), P99: ms(s.quantile(0.99)), P999: ms(s.quantile(0.999)),
		Max: ms(time.Duration(s.max)),
	}
}

// ms converts d to milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
