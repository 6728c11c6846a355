package report

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/nsbox/nsbox/bench/spawn
cpu: Test CPU
BenchmarkSpawn/nsclone-2         	    1000	   1000000 ns/op	     512 B/op	       7 allocs/op
BenchmarkSpawn/unshare-2         	     300	   4000000 ns/op
BenchmarkSpawn/nsclone-2         	    1000	   3000000 ns/op	     512 B/op	       9 allocs/op
BenchmarkSpawn/unshare-2         	     300	   2000000 ns/op
BenchmarkSpawn/nsclone-2         	    1000	   2000000 ns/op	     512 B/op	       8 allocs/op
BenchmarkSpawn/unshare-2         	     300	   6000000 ns/op
BenchmarkLonely-2                	      10	       100 ns/op
PASS
ok  	github.com/nsbox/nsbox/bench/spawn	12.3s
`

func TestParseSummarizeRatios(t *testing.T) {
	samples, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 7 {
		t.Fatalf("parsed %d samples, want 7", len(samples))
	}
	if samples[0].Pkg != "github.com/nsbox/nsbox/bench/spawn" || samples[0].Group() != "Spawn" || samples[0].Impl() != "nsclone" {
		t.Fatalf("first sample = %+v", samples[0])
	}
	res := Summarize(samples)
	if len(res) != 3 {
		t.Fatalf("summarized %d results, want 3: %+v", len(res), res)
	}
	if got := res[0].Median["ns/op"]; got != 2e6 {
		t.Errorf("nsclone median = %v, want 2e6", got)
	}
	if got := res[0].Median["allocs/op"]; got != 8 {
		t.Errorf("nsclone allocs median = %v, want 8", got)
	}
	if got := res[1].Median["ns/op"]; got != 4e6 {
		t.Errorf("unshare median = %v, want 4e6", got)
	}
	rs := Ratios(res)
	if len(rs) != 1 || rs[0].Peer != "unshare" || math.Abs(rs[0].Value-0.5) > 1e-9 {
		t.Fatalf("ratios = %+v, want one nsclone/unshare = 0.5", rs)
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, Machine{Date: "2026-11-28", Kernel: "k", CPU: "c", Cores: 2, MemoryGiB: 24, Go: "go"}, res, "make bench"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| Spawn | nsclone | 2.00 ms | unshare | 4.00 ms | 0.50 |") {
		t.Errorf("markdown lacks the ratio row:\n%s", md.String())
	}
	var svg bytes.Buffer
	if err := WriteChart(&svg, rs, "t"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(svg.String(), "<svg") || !strings.Contains(svg.String(), "Spawn: nsclone vs unshare") {
		t.Errorf("chart is not an SVG with the comparison label")
	}
}

func TestParseRejectsGarbageValue(t *testing.T) {
	if _, err := Parse(strings.NewReader("BenchmarkX-2 10 abc ns/op\n")); err == nil {
		t.Fatal("want an error for a non-numeric value")
	}
}

// Every nsbox variant of a group is compared with every peer.
func TestRatiosPairEveryVariant(t *testing.T) {
	res := []Result{
		{Pkg: "p", Group: "Storm", Impl: "nsbox", Median: map[string]float64{"ns/op": 8e9}},
		{Pkg: "p", Group: "Storm", Impl: "nsbox-lib", Median: map[string]float64{"ns/op": 2e9}},
		{Pkg: "p", Group: "Storm", Impl: "shell", Median: map[string]float64{"ns/op": 20e9}},
	}
	rs := Ratios(res)
	if len(rs) != 2 || rs[0].Ours != "nsbox" || rs[1].Ours != "nsbox-lib" ||
		math.Abs(rs[0].Value-0.4) > 1e-9 || math.Abs(rs[1].Value-0.1) > 1e-9 {
		t.Fatalf("ratios = %+v, want nsbox/shell 0.4 and nsbox-lib/shell 0.1", rs)
	}
}

// A memory group compares its -rss metric, not its time, and stays out of
// the speed-up chart.
func TestMemoryGroupComparesRSS(t *testing.T) {
	res := []Result{
		{Pkg: "p", Group: "DaemonRSS", Impl: "nsbox", Median: map[string]float64{"ns/op": 5e7, "KiB-rss": 6000}},
		{Pkg: "p", Group: "DaemonRSS", Impl: "dhclient", Median: map[string]float64{"ns/op": 8e7, "KiB-rss": 4000}},
		{Pkg: "p", Group: "Spawn", Impl: "nsbox", Median: map[string]float64{"ns/op": 1e6}},
		{Pkg: "p", Group: "Spawn", Impl: "unshare", Median: map[string]float64{"ns/op": 2e6}},
	}
	rs := Ratios(res)
	if len(rs) != 2 {
		t.Fatalf("ratios = %+v, want 2", rs)
	}
	if !rs[0].Memory() || rs[0].Metric != "KiB-rss" || math.Abs(rs[0].Value-1.5) > 1e-9 {
		t.Errorf("memory ratio = %+v, want KiB-rss 1.5", rs[0])
	}
	if rs[1].Memory() {
		t.Errorf("time ratio marked as memory: %+v", rs[1])
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, Machine{}, res, "make bench"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| DaemonRSS | nsbox | 6000 KiB-rss | dhclient | 4000 KiB-rss | 1.50 |") {
		t.Errorf("markdown lacks the memory row:\n%s", md.String())
	}
	var svg bytes.Buffer
	if err := WriteChart(&svg, rs, "t"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(svg.String(), "DaemonRSS") {
		t.Error("the chart draws a memory comparison as a speed-up")
	}
	if !strings.Contains(svg.String(), "2.00x") {
		t.Error("the chart does not print the bar's value")
	}
}

// An alternated benchmark times its own rounds: its ns/op (one iteration
// of a loop it timed itself) says nothing, and its variants compare by the
// median of their rounds.
const alternatedSample = `pkg: github.com/nsbox/nsbox/bench/pool
BenchmarkNetStartAlternated/nsbox-pool-2   	1000000000	 0.0002027 ns/op	 1.987 ms-p50	 9.909 ms-p99
BenchmarkNetStartAlternated/net-loopback-2 	1000000000	 0.0001678 ns/op	 1.848 ms-p50	 5.003 ms-p99
BenchmarkNetStartAlternated/nsbox-pool-2   	1000000000	 0.0002184 ns/op	 2.013 ms-p50	 9.909 ms-p99
BenchmarkNetStartAlternated/net-loopback-2 	1000000000	 0.0002100 ns/op	 1.812 ms-p50	 5.003 ms-p99
BenchmarkNetStartAlternated/nsbox-pool-2   	1000000000	 0.0002303 ns/op	 2.001 ms-p50	 9.909 ms-p99
BenchmarkNetStartAlternated/net-loopback-2 	1000000000	 0.0001429 ns/op	 1.900 ms-p50	 5.003 ms-p99
`

func TestAlternatedComparesRounds(t *testing.T) {
	samples, err := Parse(strings.NewReader(alternatedSample))
	if err != nil {
		t.Fatal(err)
	}
	rs := Ratios(Summarize(samples))
	if len(rs) != 1 {
		t.Fatalf("ratios = %+v, want one", rs)
	}
	r := rs[0]
	if r.OursNs != 2.001e6 || r.PeerNs != 1.848e6 || r.Memory() {
		t.Fatalf("ratio = %+v, want the p50 medians 2.001 ms and 1.848 ms as time", r)
	}
	if want := 2.001 / 1.848; math.Abs(r.Value-want) > 1e-9 {
		t.Errorf("ratio = %v, want %v", r.Value, want)
	}
}
