// Package bridge_test measures nsbox's bridge commands against their peers
// in the same run: attaching N veth ends to one bridge and bringing them up
// (nsbox -b, ip -batch, a loop of brctl addif processes), and showing an
// N-port bridge (nsbox bridge show, brctl show). N is 1000 with
// NSBOX_BENCH_FULL=1 (make bench) and 50 otherwise. Veth creation is set-up:
// the peers are created directly in a second namespace and not measured.
//
// Run: NSBOX_BENCH_FULL=1 go test -run '^$' -bench . -benchmem ./bench/bridge
package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nsbox/nsbox/bench/internal/nsboxbin"
	"github.com/nsbox/nsbox/internal/testutil"
)

// bin is the nsbox binary the benchmarks time (bench/internal/nsboxbin).
var bin nsboxbin.Binary

func TestMain(m *testing.M) { os.Exit(bin.Run(m)) }

// ports is the number of bridge ports: 1000 for make bench, small for the
// single pass of make test.
func ports() int {
	if os.Getenv("NSBOX_BENCH_FULL") == "1" {
		return 1000
	}
	return 50
}

// run runs a peer or nsbox and fails b if it fails. The limit is generous:
// the brctl loop runs 2000 processes and a loaded machine makes that slow.
func run(b *testing.B, name string, args ...string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	c := exec.CommandContext(ctx, name, args...)
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
}

// writeBatch writes lines to a file in b's temp dir.
func writeBatch(b *testing.B, name string, lines []string) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

// lab creates the bridge namespace with bridge br0 and n veth ends v0..vN-1
// whose peers live in a second namespace. Both namespaces go when b ends.
func lab(b *testing.B, n int) (ns string) {
	b.Helper()
	ns = testutil.NewNetns(b)
	peers := testutil.NewNetns(b)
	lines := []string{"link add br0 type bridge", "link set br0 up"}
	for i := 0; i < n; i++ {
		lines = append(lines, fmt.Sprintf("link add v%d type veth peer name p%d netns %s", i, i, peers))
	}
	run(b, "ip", "-n", ns, "-batch", writeBatch(b, "setup.batch", lines))
	return ns
}

// detach puts every port back: no master, down (set-up, not measured).
func detach(b *testing.B, ns string, n int) {
	b.Helper()
	lines := make([]string, 0, n)
	for i := 0; i < n; i++ {
		lines = append(lines, fmt.Sprintf("link set v%d nomaster down", i))
	}
	run(b, "ip", "-n", ns, "-batch", writeBatch(b, "detach.batch", lines))
}

// checkAttached fails b unless all n ports are in br0 (observed with
// `bridge -j link`), so that no implementation wins by doing less.
func checkAttached(b *testing.B, ns string, n int) {
	b.Helper()
	got := 0
	for _, p := range testutil.BridgeLinks(b, ns) {
		if p.Master == "br0" && strings.HasPrefix(p.Ifname, "v") {
			got++
		}
	}
	if got != n {
		b.Fatalf("%d of %d ports attached", got, n)
	}
}

// BenchmarkBridgeAttach attaches n veth ends to br0 and sets them up.
func BenchmarkBridgeAttach(b *testing.B) {
	nsbox := bin.Need(b)
	testutil.RequirePriv(b)
	testutil.RequireTool(b, "ip")
	testutil.RequireTool(b, "brctl")
	n := ports()
	impls := []struct {
		name string
		// prepare writes what the measured command reads; attach runs it.
		prepare func(b *testing.B, ns string) []string
	}{
		{"nsbox-batch", func(b *testing.B, ns string) []string {
			lines := make([]string, 0, 2*n)
			for i := 0; i < n; i++ {
				lines = append(lines, fmt.Sprintf("bridge addif br0 v%d", i), fmt.Sprintf("link set v%d up", i))
			}
			return []string{nsbox, "-n", ns, "-b", writeBatch(b, "nsbox.batch", lines)}
		}},
		{"ip-batch", func(b *testing.B, ns string) []string {
			lines := make([]string, 0, 2*n)
			for i := 0; i < n; i++ {
				lines = append(lines, fmt.Sprintf("link set v%d master br0", i), fmt.Sprintf("link set v%d up", i))
			}
			return []string{"ip", "-n", ns, "-batch", writeBatch(b, "ip.batch", lines)}
		}},
		{"brctl-loop", func(b *testing.B, ns string) []string {
			// What a person types: brctl addif and ip link set up per port,
			// one process each, inside the namespace.
			script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do brctl addif br0 v$i || exit 1; ip link set v$i up || exit 1; i=$((i+1)); done", n)
			return []string{"ip", "netns", "exec", ns, "sh", "-c", script}
		}},
	}
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			ns := lab(b, n)
			cmd := impl.prepare(b, ns)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run(b, cmd[0], cmd[1:]...)
				b.StopTimer()
				checkAttached(b, ns, n)
				detach(b, ns, n)
				b.StartTimer()
			}
			b.ReportMetric(float64(n), "ports")
		})
	}
}

// BenchmarkBridgeShow shows a bridge of n ports. The first pair runs each
// tool the way a person does: nsbox -n NS, and brctl under ip netns exec
// (brctl reads /sys, which needs the namespace's own sysfs mount). The
// second pair runs both under ip netns exec, so that only the tools differ.
func BenchmarkBridgeShow(b *testing.B) {
	nsbox := bin.Need(b)
	testutil.RequirePriv(b)
	testutil.RequireTool(b, "ip")
	testutil.RequireTool(b, "brctl")
	n := ports()
	ns := lab(b, n)
	lines := make([]string, 0, n)
	for i := 0; i < n; i++ {
		lines = append(lines, fmt.Sprintf("link set v%d master br0", i))
	}
	run(b, "ip", "-n", ns, "-batch", writeBatch(b, "attach.batch", lines))
	checkAttached(b, ns, n)

	// Both must print the same thing before we time them.
	ours, err := testutil.CmdErr(nsbox, "-n", ns, "bridge", "show")
	if err != nil {
		b.Fatal(err)
	}
	theirs := testutil.Brctl(b, ns, "show")
	if ours != theirs {
		b.Fatalf("nsbox bridge show and brctl show differ:\n%.300s\n---\n%.300s", ours, theirs)
	}

	for _, tc := range []struct{ group, impl string }{
		{"direct", "nsbox"}, {"direct", "brctl"},
		{"netns-exec", "nsbox"}, {"netns-exec", "brctl"},
	} {
		var cmd []string
		switch {
		case tc.group == "direct" && tc.impl == "nsbox":
			cmd = []string{nsbox, "-n", ns, "bridge", "show"}
		case tc.impl == "nsbox":
			cmd = []string{"ip", "netns", "exec", ns, nsbox, "bridge", "show"}
		default:
			cmd = []string{"ip", "netns", "exec", ns, "env", "LC_ALL=C", "brctl", "show"}
		}
		b.Run(tc.group+"/"+tc.impl, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				run(b, cmd[0], cmd[1:]...)
			}
			b.ReportMetric(float64(n), "ports")
		})
	}
}

// BenchmarkBridgeAttachAlternated is BenchmarkBridgeAttach's nsbox-batch
// and ip-batch, alternated within each iteration on the same lab, so that
// both see the same machine load. It reports the median time of each and
// their ratio (nsbox/ip: below 1 means nsbox is faster). Use -benchtime=11x
// or more; each iteration runs both once.
//
// Run: NSBOX_BENCH_FULL=1 go test -run '^$' -bench BridgeAttachAlternated -benchtime=11x ./bench/bridge
func BenchmarkBridgeAttachAlternated(b *testing.B) {
	nsbox := bin.Need(b)
	testutil.RequirePriv(b)
	testutil.RequireTool(b, "ip")
	n := ports()
	ns := lab(b, n)
	nsboxLines := make([]string, 0, 2*n)
	ipLines := make([]string, 0, 2*n)
	for i := 0; i < n; i++ {
		nsboxLines = append(nsboxLines, fmt.Sprintf("bridge addif br0 v%d", i), fmt.Sprintf("link set v%d up", i))
		ipLines = append(ipLines, fmt.Sprintf("link set v%d master br0", i), fmt.Sprintf("link set v%d up", i))
	}
	cmds := [][]string{
		{nsbox, "-n", ns, "-b", writeBatch(b, "nsbox.batch", nsboxLines)},
		{"ip", "-n", ns, "-batch", writeBatch(b, "ip.batch", ipLines)},
	}
	times := [2][]time.Duration{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, cmd := range cmds {
			start := time.Now()
			run(b, cmd[0], cmd[1:]...)
			times[k] = append(times[k], time.Since(start))
			b.StopTimer()
			checkAttached(b, ns, n)
			detach(b, ns, n)
			b.StartTimer()
		}
	}
	reportAlternated(b, times[0], times[1])
	b.ReportMetric(float64(n), "ports")
}

// reportAlternated reports the medians of the nsbox and ip runs and their
// ratio.
func reportAlternated(b *testing.B, nsbox, ip []time.Duration) {
	mn, mi := median(nsbox), median(ip)
	b.ReportMetric(float64(mn.Microseconds())/1000, "nsbox-ms")
	b.ReportMetric(float64(mi.Microseconds())/1000, "ip-ms")
	if mi > 0 {
		b.ReportMetric(float64(mn)/float64(mi), "nsbox/ip")
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
