package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteReport writes rep to w as "text" (for people) or "json" (one object,
// for scripts).
func WriteReport(w io.Writer, rep Report, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "text", "":
	default:
		return fmt.Errorf("format %q: want text or json", format)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := rep.Mode
	if rep.Mix != nil && rep.Mix.Update > 0 {
		mode += " (" + rep.Mix.String() + ")"
	}
	fmt.Fprintf(tw, "mode\t%s\n", mode)
	fmt.Fprintf(tw, "targets\t%s\n", strings.Join(rep.Targets, ", "))
	load := strconv.Itoa(rep.Clients) + " clients, closed loop"
	if rep.Rate > 0 {
		load = fmt.Sprintf("%d clients, open loop at %g req/s (latency from the scheduled time)", rep.Clients, rep.Rate)
	}
	fmt.Fprintf(tw, "load\t%s\n", load)
	if rep.Seeded > 0 {
		fmt.Fprintf(tw, "keys\t%d authors\n", rep.Seeded)
	}
	fmt.Fprintf(tw, "duration\t%.2fs%s\n", rep.DurationSeconds, map[bool]string{true: " (interrupted)"}[rep.Interrupted])
	ops := make([]string, 0, len(rep.Ops))
	for op := range rep.Ops {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	var parts []string
	for _, op := range ops {
		parts = append(parts, fmt.Sprintf("%s %d", op, rep.Ops[op].Requests))
	}
	req := strconv.FormatInt(rep.Requests, 10)
	if len(parts) > 1 {
		req += " (" + strings.Join(parts, ", ") + ")"
	}
	fmt.Fprintf(tw, "requests\t%s\n", req)
	fmt.Fprintf(tw, "successes\t%d\n", rep.Successes)
	fmt.Fprintf(tw, "errors\t%d\n", rep.Errors)
	for _, k := range rep.ErrorKinds {
		fmt.Fprintf(tw, "  %s\t%d\n", k.Kind, k.Count)
	}
	fmt.Fprintf(tw, "throughput\t%.1f req/s\n", rep.Throughput)
	l := rep.Latency
	fmt.Fprintf(tw, "latency\tp50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (min %s, mean %s; successful requests)\n",
		fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.P999), fmtMS(l.Max), fmtMS(l.Min), fmtMS(l.Mean))
	return tw.Flush()
}

// fmtMS formats milliseconds with three significant digits or so.
func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}
