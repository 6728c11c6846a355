package report

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Sample is one line of benchmark output: one run of one sub-benchmark.
type Sample struct {
	Pkg     string             // the package path from the "pkg:" line
	Name    string             // full name without "Benchmark" and the -CPU suffix
	N       int                // iterations
	Metrics map[string]float64 // unit -> value, e.g. "ns/op" -> 1.2e6
}

// Group is the key of a comparison: the name up to the last '/'.
func (s Sample) Group() string {
	if i := strings.LastIndexByte(s.Name, '/'); i >= 0 {
		return s.Name[:i]
	}
	return s.Name
}

// Impl is the implementation measured: the last element of the name.
func (s Sample) Impl() string {
	if i := strings.LastIndexByte(s.Name, '/'); i >= 0 {
		return s.Name[i+1:]
	}
	return ""
}

var (
	benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)
	pkgLine   = regexp.MustCompile(`^pkg:\s+(\S+)`)
)

// Parse reads `go test -bench` output and returns its samples in order.
// Lines that are not benchmark results are ignored.
func Parse(r io.Reader) ([]Sample, error) {
	var out []Sample
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if m := pkgLine.FindStringSubmatch(line); m != nil {
			pkg = m[1]
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[2])
		if err != nil {
			continue
		}
		fields := strings.Fields(m[3])
		if len(fields) < 2 || len(fields)%2 != 0 {
			continue
		}
		s := Sample{Pkg: pkg, Name: m[1], N: n, Metrics: map[string]float64{}}
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("report: parse %q: value %q: %w", line, fields[i], err)
			}
			s.Metrics[fields[i+1]] = v
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: read benchmark output: %w", err)
	}
	return out, nil
}

// Result is the median of every metric of one sub-benchmark over its runs.
type Result struct {
	Pkg, Group, Impl string
	Runs             int
	Median           map[string]float64
}

// Ours reports whether the implementation is nsbox's own.
func (r Result) Ours() bool {
	l := strings.ToLower(r.Impl)
	return strings.HasPrefix(l, "nsbox") || strings.HasPrefix(l, "nsclone")
}

// Summarize groups samples by name and takes the median of each metric,
// keeping the order in which the benchmarks first appeared.
func Summarize(samples []Sample) []Result {
	type acc struct {
		res  Result
		vals map[string][]float64
	}
	var order []string
	byName := map[string]*acc{}
	for _, s := range samples {
		key := s.Pkg + " " + s.Name
		a, ok := byName[key]
		if !ok {
			a = &acc{res: Result{Pkg: s.Pkg, Group: s.Group(), Impl: s.Impl()}, vals: map[string][]float64{}}
			byName[key] = a
			order = append(order, key)
		}
		a.res.Runs++
		for unit, v := range s.Metrics {
			a.vals[unit] = append(a.vals[unit], v)
		}
	}
	out := make([]Result, 0, len(order))
	for _, k := range order {
		a := byName[k]
		a.res.Median = map[string]float64{}
		for unit, vs := range a.vals {
			a.res.Median[unit] = median(vs)
		}
		out = append(out, a.res)
	}
	return out
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Ratio compares one peer with nsbox in the same group.
type Ratio struct {
	Group, Ours, Peer string
	// Metric is the unit compared: "ns/op" for time, or a memory unit
	// such as "KiB-rss" for a memory group (see MemoryUnit).
	Metric string
	// OursNs and PeerNs are the two medians of Metric (nanoseconds for
	// time; the names stay for the common case).
	OursNs, PeerNs float64
	// Value is OursNs / PeerNs: below 1.0 nsbox is faster (or smaller).
	Value float64
}

// Memory reports whether the ratio compares memory, not time.
func (r Ratio) Memory() bool { return strings.HasSuffix(r.Metric, "-rss") }

// P50Unit is the metric of an alternated benchmark: one that times its
// own rounds (every variant in one loop, in turn) and reports each
// variant's median as "ms-p50", its ns/op saying nothing (-benchtime 1x
// of a loop it times itself).
const P50Unit = "ms-p50"

// timeOf returns the time a group compares for r, in nanoseconds: the
// median of its rounds when every result of the group reports P50Unit,
// else its median ns/op.
func timeOf(r Result, alternated bool) float64 {
	if alternated {
		return r.Median[P50Unit] * 1e6
	}
	return r.Median["ns/op"]
}

// isAlternated reports whether every result of a group reports P50Unit.
func isAlternated(rs []Result) bool {
	for _, r := range rs {
		if _, ok := r.Median[P50Unit]; !ok {
			return false
		}
	}
	return len(rs) > 0
}

// MemoryUnit returns the memory metric a group compares, or "" for a time
// group. A group is a memory comparison when its name ends in "RSS" (for
// example BenchmarkDaemonRSS) and its results report a "-rss" metric; its
// ns/op then only says how long each measurement took.
func MemoryUnit(group string, rs []Result) string {
	if !strings.HasSuffix(group, "RSS") {
		return ""
	}
	for _, r := range rs {
		for u := range r.Median {
			if strings.HasSuffix(u, "-rss") {
				return u
			}
		}
	}
	return ""
}

// Ratios pairs each of nsbox's variants in every group (a CLI and a
// library storm, say) with each of its peers, by median ns/op, by the
// median of the rounds of an alternated group (P50Unit), or by the median
// memory of a memory group (MemoryUnit).
func Ratios(results []Result) []Ratio {
	var out []Ratio
	groups := map[string][]Result{}
	var order []string
	for _, r := range results {
		k := r.Pkg + " " + r.Group
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range order {
		rs := groups[k]
		metric, alt := "ns/op", isAlternated(rs)
		value := func(r Result) float64 { return timeOf(r, alt) }
		if u := MemoryUnit(rs[0].Group, rs); u != "" {
			metric, value = u, func(r Result) float64 { return r.Median[u] }
		}
		for _, ref := range rs {
			if !ref.Ours() || value(ref) == 0 {
				continue
			}
			for _, r := range rs {
				if r.Ours() || value(r) == 0 {
					continue
				}
				out = append(out, Ratio{
					Group: ref.Group, Ours: ref.Impl, Peer: r.Impl, Metric: metric,
					OursNs: value(ref), PeerNs: value(r),
					Value: value(ref) / value(r),
				})
			}
		}
	}
	return out
}
