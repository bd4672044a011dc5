package chaostest

// The figures of a fault, from the writes and the attempts of the load.

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// figures are what a fault did to the load, from its injection to full
// health.
type figures struct {
	// waitByPartition is, per partition, the longest a write on it
	// waited until its acknowledgement, retries included, among the
	// writes pending at some time during the fault (in seconds, for the
	// report). A write begun before the injection waited for the fault
	// from the injection: what it waited before belongs to the previous
	// fault, whose own figures count it.
	waitByPartition map[int32]float64
	maxWait         time.Duration // over the partitions
	medianWait      time.Duration // of the partitions' longest waits
	affectedMaxWait time.Duration // over the partitions the victim led or owned
	// longestAttempt is the longest one request of a write took to be
	// answered (or to give up), among those begun during the fault.
	longestAttempt time.Duration
	writes, reads  int            // attempts begun from injection to full health
	failedWrites   map[string]int // of those, by answer
	failedReads    map[string]int
	// worst describes the write that waited longest: when it began and
	// was acknowledged, relative to the injection, and its attempts.
	worst string
}

func compute(f *fault, l *load) figures {
	fig := figures{waitByPartition: map[int32]float64{}, failedWrites: map[string]int{}, failedReads: map[string]int{}}
	waits := map[int32]time.Duration{}
	var worst *writeOp
	var worstWait time.Duration
	for _, w := range l.writes() {
		done := w.ackedAt
		if !w.acked {
			done = f.healthy
		}
		if w.first.IsZero() || done.Before(f.start) || w.first.After(f.healthy) {
			continue
		}
		d := done.Sub(later(w.first, f.start))
		if d > waits[w.partition] {
			waits[w.partition] = d
		}
		if worst == nil || d > worstWait {
			worst, worstWait = w, d
		}
	}
	var all []time.Duration
	for p, d := range waits {
		fig.waitByPartition[p] = d.Seconds()
		all = append(all, d)
		fig.maxWait = max(fig.maxWait, d)
		if slices.Contains(f.affected, p) {
			fig.affectedMaxWait = max(fig.affectedMaxWait, d)
		}
	}
	if len(all) > 0 {
		slices.Sort(all)
		fig.medianWait = all[len(all)/2]
	}
	var tries []string
	for _, a := range l.snapshot() {
		if worst != nil && a.write && a.op == worst.op && a.key == worst.key {
			try := fmt.Sprintf("%s via node%d %+.1fs %.1fs", statusName(a), a.instance+1, a.start.Sub(f.start).Seconds(), a.took.Seconds())
			if a.detail != "" {
				try += " (" + a.detail + ")"
			}
			tries = append(tries, try)
		}
		if a.start.Before(f.start) || a.start.After(f.healthy) {
			continue
		}
		ok := a.status >= 200 && a.status < 300 || !a.write && a.status == 404
		if a.write {
			fig.writes++
			if !a.start.After(f.end) {
				fig.longestAttempt = max(fig.longestAttempt, a.took)
			}
			if !ok {
				fig.failedWrites[statusName(a)]++
			}
		} else {
			fig.reads++
			if !ok {
				fig.failedReads[statusName(a)]++
			}
		}
	}
	if worst != nil {
		end := "not acknowledged"
		if worst.acked {
			end = fmt.Sprintf("%+.1fs", worst.ackedAt.Sub(f.start).Seconds())
		}
		fig.worst = fmt.Sprintf("%s of %s (partition %d) from %+.1fs to %s of the injection, attempts (answer, start, took): %s",
			worst.op, worst.key, worst.partition, worst.first.Sub(f.start).Seconds(), end, strings.Join(tries, "; "))
	}
	return fig
}

func (fig figures) summary(f *fault) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s for %v", f.victim, f.end.Sub(f.start).Round(100*time.Millisecond))
	if !f.fenced.IsZero() {
		fmt.Fprintf(&b, " (fenced after %v)", f.fenced.Sub(f.start).Round(100*time.Millisecond))
	}
	fmt.Fprintf(&b, "; longest write wait %v (partitions it led or owned %v: %v; median over partitions %v); full health %v after the fault ended",
		fig.maxWait.Round(100*time.Millisecond), f.affected, fig.affectedMaxWait.Round(100*time.Millisecond),
		fig.medianWait.Round(100*time.Millisecond), f.healthy.Sub(f.end).Round(100*time.Millisecond))
	fmt.Fprintf(&b, "; longest single write request %v", fig.longestAttempt.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "; %d write attempts, failed %s; %d reads, failed %s", fig.writes, counts(fig.failedWrites), fig.reads, counts(fig.failedReads))
	var ps []string
	for _, p := range slices.Sorted(maps.Keys(fig.waitByPartition)) {
		ps = append(ps, fmt.Sprintf("%d:%.1fs", p, fig.waitByPartition[p]))
	}
	fmt.Fprintf(&b, "; longest wait by partition %s", strings.Join(ps, " "))
	return b.String()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
