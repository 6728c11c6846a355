package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Machine describes where the benchmarks ran; it heads the report.
type Machine struct {
	Date, Host, Kernel, CPU, Go string
	Cores                       int
	MemoryGiB                   float64
}

// WriteMarkdown writes the report: the machine, every ratio against a peer,
// then every median with its other metrics.
func WriteMarkdown(w io.Writer, m Machine, results []Result, command string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# nsbox benchmark results\n\n")
	fmt.Fprintf(&b, "Produced by `%s` on %s.\n\n", command, m.Date)
	fmt.Fprintf(&b, "| machine | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| kernel | %s |\n| CPU | %s (%d cores) |\n| memory | %.1f GiB |\n| Go | %s |\n\n",
		m.Kernel, m.CPU, m.Cores, m.MemoryGiB, m.Go)
	b.WriteString("Every peer ran side by side with nsbox in the same run. A ratio is nsbox's median\n")
	b.WriteString("time divided by the peer's: below 1.00 nsbox is faster (0.50 = twice as fast).\n")
	b.WriteString("A memory group (a name ending in RSS) compares resident memory instead: below 1.00\n")
	b.WriteString("nsbox uses less; the chart leaves those out, since they are not speed-ups.\n\n")
	b.WriteString("## nsbox against each peer\n\n")
	b.WriteString("| comparison | nsbox | median | peer | median | ratio |\n| --- | --- | ---: | --- | ---: | ---: |\n")
	for _, r := range Ratios(results) {
		ours, peer := human(r.OursNs), human(r.PeerNs)
		if r.Memory() {
			ours, peer = trim(r.OursNs)+" "+r.Metric, trim(r.PeerNs)+" "+r.Metric
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.2f |\n", r.Group, r.Ours, ours, r.Peer, peer, r.Value)
	}
	b.WriteString("\n## Every median\n\n")
	b.WriteString("| benchmark | runs | median time/op | other metrics (medians) |\n| --- | ---: | ---: | --- |\n")
	for _, r := range results {
		var extra []string
		units := make([]string, 0, len(r.Median))
		for u := range r.Median {
			if u != "ns/op" {
				units = append(units, u)
			}
		}
		sort.Strings(units)
		for _, u := range units {
			extra = append(extra, fmt.Sprintf("%s %s", trim(r.Median[u]), u))
		}
		name := r.Group
		if r.Impl != "" {
			name += "/" + r.Impl
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", name, r.Runs, human(r.Median["ns/op"]), strings.Join(extra, ", "))
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("report: write markdown: %w", err)
	}
	return nil
}

// human prints nanoseconds with a readable unit.
func human(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.0f ns", ns)
	}
}

func trim(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3g", v)
}
