package netlinkbench

import (
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
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// bin finds or builds nsbox on first use by a benchmark (plain `go test`
// runs no benchmark and builds nothing); nsboxBin is its path, set by
// needBinary.
var (
	bin      nsboxbin.Binary
	nsboxBin string
)

func TestMain(m *testing.M) { os.Exit(bin.Run(m)) }

// needBinary sets nsboxBin (NSBOX_BIN, else the Makefile's bin/nsbox, else
// a fresh build) or fails b.
func needBinary(b *testing.B) {
	b.Helper()
	nsboxBin = bin.Need(b)
}

func full() bool { return os.Getenv("NSBOX_BENCH_FULL") == "1" }

// run runs a command and fails b if it fails.
func run(b *testing.B, stdin string, name string, args ...string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	if out, err := c.CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// hub makes the namespace that stands for the root one, deleted at the end.
func hub(b *testing.B) string {
	b.Helper()
	testutil.RequirePriv(b)
	testutil.RequireTool(b, "ip")
	needBinary(b)
	name := testutil.UniqueName("nsbh")
	run(b, "", "ip", "netns", "add", name)
	b.Cleanup(func() { testutil.CmdErr("ip", "netns", "del", name) })
	return name
}

// spokes names the N namespaces of one build and removes whatever of them
// is left when the benchmark ends.
func spokes(b *testing.B, n int) []string {
	b.Helper()
	prefix := testutil.UniqueName("nsbs")
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	b.Cleanup(func() { deleteAll(names) })
	return names
}

func deleteAll(names []string) {
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(netns.RunDir, n)); err == nil {
			testutil.CmdErr("ip", "netns", "del", n)
		}
	}
}

// addrs returns the two ends of the i-th /30 in 10.128.0.0/10.
func addrs(i int) (hubEnd, spokeEnd string) {
	off := 4 * i
	b, c, d := 128+(off>>16), (off>>8)&255, off&255
	return fmt.Sprintf("10.%d.%d.%d/30", b, c, d+1), fmt.Sprintf("10.%d.%d.%d/30", b, c, d+2)
}

// nsboxScript is the whole topology as one nsbox batch (run with -n HUB).
func nsboxScript(names []string) string {
	var s strings.Builder
	for i, n := range names {
		h, p := addrs(i)
		fmt.Fprintf(&s, "netns add %s\n", n)
		fmt.Fprintf(&s, "link add h%d type veth peer name eth0 netns %s\n", i, n)
		fmt.Fprintf(&s, "addr add %s dev h%d\n", h, i)
		fmt.Fprintf(&s, "link set h%d up\n", i)
		fmt.Fprintf(&s, "-n %s addr add %s dev eth0\n", n, p)
		fmt.Fprintf(&s, "-n %s link set eth0 up\n", n)
	}
	return s.String()
}

// checkTopology verifies, through rtnl in the hub and ip in one spoke, that
// a build produced what it should.
func checkTopology(b *testing.B, hubName string, names []string) {
	b.Helper()
	h, err := netns.Open(hubName)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	c, err := rtnl.Dial(h)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	links, err := c.Links(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	up := 0
	for _, l := range links {
		if strings.HasPrefix(l.Name, "h") && l.RawFlags&1 != 0 {
			up++
		}
	}
	if up != len(names) {
		b.Fatalf("hub has %d veths up, want %d", up, len(names))
	}
	last := len(names) - 1
	_, p := addrs(last)
	out := testutil.Cmd(b, "ip", "-n", names[last], "-o", "addr", "show", "dev", "eth0", "up")
	if !strings.Contains(out, strings.TrimSuffix(p, "/30")) {
		b.Fatalf("spoke %s: %q lacks %s", names[last], out, p)
	}
}

// reset deletes the spokes and waits until their veths left the hub, so
// the next build starts from the same state.
func reset(b *testing.B, hubName string, names []string) {
	b.Helper()
	deleteAll(names)
	h, err := netns.Open(hubName)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	c, err := rtnl.Dial(h)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	waitGone(b, c)
}

// waitGone waits (bounded) until the hub has no spoke veths left.
func waitGone(b *testing.B, c *rtnl.Conn) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		links, err := c.Links(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(links) <= 1 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("hub still has %d links", len(links))
		}
		time.Sleep(time.Millisecond)
	}
}

func topologySize() int {
	if full() {
		return 200
	}
	return 10
}

// BenchmarkTopology builds N namespaces each joined to the hub by a veth,
// an address on each end, both up.
func BenchmarkTopology(b *testing.B) {
	n := topologySize()
	b.Run("nsbox-batch", func(b *testing.B) {
		b.ReportAllocs()
		hubName := hub(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			names := spokes(b, n)
			script := nsboxScript(names)
			b.StartTimer()
			run(b, script, nsboxBin, "-n", hubName, "-b", "-")
			b.StopTimer()
			checkTopology(b, hubName, names)
			reset(b, hubName, names)
			b.StartTimer()
		}
	})
	// ip -batch cannot switch namespace per line: one batch creates the
	// namespaces, one (in the hub) the veths with their peers directly in
	// the spokes, and one short batch per spoke its end.
	b.Run("ip-batch", func(b *testing.B) {
		b.ReportAllocs()
		hubName := hub(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			names := spokes(b, n)
			var nsb, hubb strings.Builder
			spoke := make([]string, n)
			for j, name := range names {
				h, p := addrs(j)
				fmt.Fprintf(&nsb, "netns add %s\n", name)
				fmt.Fprintf(&hubb, "link add h%d type veth peer name eth0 netns %s\naddr add %s dev h%d\nlink set h%d up\n", j, name, h, j, j)
				spoke[j] = fmt.Sprintf("addr add %s dev eth0\nlink set eth0 up\n", p)
			}
			b.StartTimer()
			run(b, nsb.String(), "ip", "-batch", "-")
			run(b, hubb.String(), "ip", "-n", hubName, "-batch", "-")
			for j, name := range names {
				run(b, spoke[j], "ip", "-n", name, "-batch", "-")
			}
			b.StopTimer()
			checkTopology(b, hubName, names)
			reset(b, hubName, names)
			b.StartTimer()
		}
	})
	// The same in a single ip -batch, the spokes' lines through netns exec.
	b.Run("ip-batch-netns-exec", func(b *testing.B) {
		b.ReportAllocs()
		hubName := hub(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			names := spokes(b, n)
			var s strings.Builder
			for j, name := range names {
				h, p := addrs(j)
				fmt.Fprintf(&s, "netns add %s\n", name)
				fmt.Fprintf(&s, "netns exec %s ip link add h%d type veth peer name eth0 netns %s\n", hubName, j, name)
				fmt.Fprintf(&s, "netns exec %s ip addr add %s dev h%d\n", hubName, h, j)
				fmt.Fprintf(&s, "netns exec %s ip link set h%d up\n", hubName, j)
				fmt.Fprintf(&s, "netns exec %s ip addr add %s dev eth0\n", name, p)
				fmt.Fprintf(&s, "netns exec %s ip link set eth0 up\n", name)
			}
			b.StartTimer()
			run(b, s.String(), "ip", "-batch", "-")
			b.StopTimer()
			checkTopology(b, hubName, names)
			reset(b, hubName, names)
			b.StartTimer()
		}
	})
	// One ip process per command, the walkthrough's way: add the pair in
	// the hub, then move one end into the namespace.
	b.Run("ip-per-command", func(b *testing.B) {
		b.ReportAllocs()
		hubName := hub(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			names := spokes(b, n)
			b.StartTimer()
			for j, name := range names {
				h, p := addrs(j)
				hv, pv := fmt.Sprintf("h%d", j), fmt.Sprintf("p%d", j)
				run(b, "", "ip", "netns", "add", name)
				run(b, "", "ip", "-n", hubName, "link", "add", hv, "type", "veth", "peer", "name", pv)
				run(b, "", "ip", "-n", hubName, "link", "set", pv, "netns", name)
				run(b, "", "ip", "-n", hubName, "addr", "add", h, "dev", hv)
				run(b, "", "ip", "-n", hubName, "link", "set", hv, "up")
				run(b, "", "ip", "-n", name, "link", "set", pv, "name", "eth0")
				run(b, "", "ip", "-n", name, "addr", "add", p, "dev", "eth0")
				run(b, "", "ip", "-n", name, "link", "set", "eth0", "up")
			}
			b.StopTimer()
			checkTopology(b, hubName, names)
			reset(b, hubName, names)
			b.StartTimer()
		}
	})
}

// BenchmarkTeardown removes the topology of BenchmarkTopology: nsbox deletes
// the namespaces in one batch, and the kernel takes their veths down in one
// batched cleanup (timed until the last veth has left the hub); the peer
// deletes the links one by one with ip, then the namespaces.
func BenchmarkTeardown(b *testing.B) {
	n := topologySize()
	build := func(b *testing.B, hubName string, names []string) {
		run(b, nsboxScript(names), nsboxBin, "-n", hubName, "-b", "-")
	}
	b.Run("nsbox-netns-del", func(b *testing.B) {
		b.ReportAllocs()
		hubName := hub(b)
		b.ResetTimer()
		h, err := netns.Open(hubName)
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		c, err := rtnl.Dial(h)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			names := spokes(b, n)
			build(b, hubName, names)
			var s strings.Builder
			for _, name := range names {
				fmt.Fprintf(&s, "netns del %s\n", name)
			}
			b.StartTimer()
			run(b, s.String(), nsboxBin, "-b", "-")
			waitGone(b, c)
		}
	})
	b.Run("ip-link-del-each", func(b *testing.B) {
		b.ReportAllocs()
		hubName := hub(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			names := spokes(b, n)
			build(b, hubName, names)
			b.StartTimer()
			for j, name := range names {
				run(b, "", "ip", "-n", hubName, "link", "del", fmt.Sprintf("h%d", j))
				run(b, "", "ip", "netns", "del", name)
			}
		}
	})
}

// BenchmarkPerObject adds N veth pairs with an address each, up, in one
// namespace, with one batch. ns/object must stay flat from the small N to
// the large one: every line is a lookup by name, never a dump.
func BenchmarkPerObject(b *testing.B) {
	sizes := []int{10, 50}
	if full() {
		sizes = []int{100, 1000}
	}
	script := func(n int) string {
		var s strings.Builder
		for i := 0; i < n; i++ {
			h, _ := addrs(i)
			fmt.Fprintf(&s, "link add a%d type veth peer name b%d\naddr add %s dev a%d\nlink set a%d up\n", i, i, h, i, i)
		}
		return s.String()
	}
	for _, n := range sizes {
		lines := script(n)
		b.Run(fmt.Sprintf("N=%d/nsbox-batch", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				ns := hub(b)
				b.StartTimer()
				run(b, lines, nsboxBin, "-n", ns, "-b", "-")
				b.StopTimer()
				testutil.CmdErr("ip", "netns", "del", ns)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/object")
		})
		b.Run(fmt.Sprintf("N=%d/ip-batch", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				ns := hub(b)
				b.StartTimer()
				run(b, lines, "ip", "-n", ns, "-batch", "-")
				b.StopTimer()
				testutil.CmdErr("ip", "netns", "del", ns)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/object")
		})
	}
}

// BenchmarkNetnsAddDel creates and deletes a named namespace, one process
// per call: nsbox netns add + del against ip netns add + del. "nsbox" takes
// the C fast path (csrc/netns_fast.c, no Go runtime start); "nsbox-go-path"
// is the same binary with NSBOX_NO_FASTPATH=1, for the difference (the
// report compares "nsbox", the first nsbox one, with ip).
func BenchmarkNetnsAddDel(b *testing.B) {
	for _, impl := range []struct {
		name string
		env  []string // added to the environment
		argv func(op, ns string) []string
	}{
		{"nsbox", []string{"NSBOX_NO_FASTPATH=0"}, func(op, ns string) []string { return []string{nsboxBin, "netns", op, ns} }},
		{"nsbox-go-path", []string{"NSBOX_NO_FASTPATH=1"}, func(op, ns string) []string { return []string{nsboxBin, "netns", op, ns} }},
		{"ip", nil, func(op, ns string) []string { return []string{"ip", "netns", op, ns} }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			testutil.RequirePriv(b)
			testutil.RequireTool(b, "ip")
			needBinary(b)
			b.ReportAllocs()
			name := testutil.UniqueName("nsbad")
			b.Cleanup(func() { deleteAll([]string{name}) })
			env := append(os.Environ(), impl.env...)
			call := func(argv []string) {
				c := exec.Command(argv[0], argv[1:]...)
				c.Env = env
				if out, err := c.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				call(impl.argv("add", name))
				call(impl.argv("del", name))
			}
			b.StopTimer()
			if _, err := os.Lstat(filepath.Join(netns.RunDir, name)); err == nil {
				b.Fatalf("%s: /run/netns/%s left after del", impl.name, name)
			}
		})
	}
}

// BenchmarkNetnsExec runs /bin/true in a named namespace, one process per
// call: nsbox netns exec (run's C start-up path), its Go path, and ip netns
// exec, side by side in the same run. Target: nsbox at most 1.0x ip.
func BenchmarkNetnsExec(b *testing.B) {
	for _, impl := range []struct {
		name string
		env  []string
		argv func(ns string) []string
	}{
		{"nsbox", []string{"NSBOX_NO_FASTPATH=0"}, func(ns string) []string { return []string{nsboxBin, "netns", "exec", ns, "/bin/true"} }},
		{"nsbox-go-path", []string{"NSBOX_NO_FASTPATH=1"}, func(ns string) []string { return []string{nsboxBin, "netns", "exec", ns, "/bin/true"} }},
		{"ip", nil, func(ns string) []string { return []string{"ip", "netns", "exec", ns, "/bin/true"} }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			testutil.RequirePriv(b)
			testutil.RequireTool(b, "ip")
			needBinary(b)
			b.ReportAllocs()
			name := testutil.UniqueName("nsbex")
			b.Cleanup(func() { deleteAll([]string{name}) })
			if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
				b.Fatalf("ip netns add %s: %v: %s", name, err, out)
			}
			env := append(os.Environ(), impl.env...)
			argv := impl.argv(name)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := exec.Command(argv[0], argv[1:]...)
				c.Env = env
				if out, err := c.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
				}
			}
		})
	}
}

// BenchmarkNetnsAddDelBatch creates and deletes K named namespaces in one
// process: nsbox -b against ip -batch with the same lines (ns/op is per K).
func BenchmarkNetnsAddDelBatch(b *testing.B) {
	const k = 10
	for _, impl := range []struct {
		name string
		argv []string
	}{
		{"nsbox-batch", []string{"", "-b", "-"}},
		{"ip-batch", []string{"ip", "-batch", "-"}},
	} {
		b.Run(impl.name, func(b *testing.B) {
			testutil.RequirePriv(b)
			testutil.RequireTool(b, "ip")
			needBinary(b)
			b.ReportAllocs()
			argv := append([]string(nil), impl.argv...)
			if argv[0] == "" {
				argv[0] = nsboxBin
			}
			names := spokes(b, k)
			var s strings.Builder
			for _, n := range names {
				fmt.Fprintf(&s, "netns add %s\nnetns del %s\n", n, n)
			}
			script := s.String()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run(b, script, argv[0], argv[1:]...)
			}
		})
	}
}

// BenchmarkNetnsAddDelLibrary: the Go API (netns.Add + Delete in this
// process) against one ip process per call, for programs that embed nsbox.
func BenchmarkNetnsAddDelLibrary(b *testing.B) {
	b.Run("nsbox-lib", func(b *testing.B) {
		testutil.RequirePriv(b)
		b.ReportAllocs()
		name := testutil.UniqueName("nsbal")
		b.Cleanup(func() { deleteAll([]string{name}) })
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			if err := netns.Add(ctx, name); err != nil {
				b.Fatal(err)
			}
			if err := netns.Delete(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ip", func(b *testing.B) {
		testutil.RequirePriv(b)
		testutil.RequireTool(b, "ip")
		b.ReportAllocs()
		name := testutil.UniqueName("nsbal")
		b.Cleanup(func() { deleteAll([]string{name}) })
		for i := 0; i < b.N; i++ {
			run(b, "", "ip", "netns", "add", name)
			run(b, "", "ip", "netns", "del", name)
		}
	})
}

// alternate runs each of impls once per iteration, first one first on even
// iterations and last one first on odd ones (so that the clean-up a run
// leaves to the kernel, such as a namespace's deletion, weighs on both
// alike), and reports the median of each and the ratio of the first to the
// second ("nsbox/ip": below 1 means nsbox is faster). prepare (untimed)
// returns what a run needs; check (untimed) verifies and cleans up.
func alternate(b *testing.B, names [2]string, prepare func(b *testing.B, k int) func(), check func(b *testing.B, k int)) {
	b.Helper()
	var times [2][]time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		order := [2]int{0, 1}
		if i%2 == 1 {
			order = [2]int{1, 0}
		}
		for _, k := range order {
			b.StopTimer()
			runIt := prepare(b, k)
			b.StartTimer()
			start := time.Now()
			runIt()
			times[k] = append(times[k], time.Since(start))
			b.StopTimer()
			check(b, k)
			b.StartTimer()
		}
	}
	m0, m1 := median(times[0]), median(times[1])
	b.ReportMetric(float64(m0.Microseconds())/1000, names[0]+"-ms")
	b.ReportMetric(float64(m1.Microseconds())/1000, names[1]+"-ms")
	if m1 > 0 {
		b.ReportMetric(float64(m0)/float64(m1), names[0]+"/"+names[1])
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

// BenchmarkPerObjectAlternated is BenchmarkPerObject's largest N with
// nsbox -b and ip -batch alternated in each iteration (same load for both);
// it reports both medians and their ratio. Use -benchtime=11x or more.
//
// Run: NSBOX_BENCH_FULL=1 go test -run '^$' -bench PerObjectAlternated -benchtime=11x ./bench/netlink
func BenchmarkPerObjectAlternated(b *testing.B) {
	n := 50
	if full() {
		n = 1000
	}
	var s strings.Builder
	for i := 0; i < n; i++ {
		h, _ := addrs(i)
		fmt.Fprintf(&s, "link add a%d type veth peer name b%d\naddr add %s dev a%d\nlink set a%d up\n", i, i, h, i, i)
	}
	lines := s.String()
	var ns string
	alternate(b, [2]string{"nsbox", "ip"},
		func(b *testing.B, k int) func() {
			ns = hub(b)
			if k == 0 {
				return func() { run(b, lines, nsboxBin, "-n", ns, "-b", "-") }
			}
			return func() { run(b, lines, "ip", "-n", ns, "-batch", "-") }
		},
		func(b *testing.B, k int) {
			out := testutil.Cmd(b, "ip", "-n", ns, "-o", "addr", "show", "up")
			if got := strings.Count(out, " inet 10."); got != n {
				b.Fatalf("run %d: %d addresses on up links, want %d", k, got, n)
			}
			testutil.CmdErr("ip", "netns", "del", ns)
		})
	b.ReportMetric(float64(n), "objects")
}

// BenchmarkTopologyAlternated is BenchmarkTopology's nsbox-batch and
// ip-batch alternated in each iteration; it reports both medians and their
// ratio. Use -benchtime=11x or more.
//
// Run: NSBOX_BENCH_FULL=1 go test -run '^$' -bench TopologyAlternated -benchtime=11x ./bench/netlink
func BenchmarkTopologyAlternated(b *testing.B) {
	n := topologySize()
	hubName := hub(b)
	var names []string
	alternate(b, [2]string{"nsbox", "ip"},
		func(b *testing.B, k int) func() {
			names = spokes(b, n)
			if k == 0 {
				script := nsboxScript(names)
				return func() { run(b, script, nsboxBin, "-n", hubName, "-b", "-") }
			}
			var nsb, hubb strings.Builder
			spoke := make([]string, n)
			for j, name := range names {
				h, p := addrs(j)
				fmt.Fprintf(&nsb, "netns add %s\n", name)
				fmt.Fprintf(&hubb, "link add h%d type veth peer name eth0 netns %s\naddr add %s dev h%d\nlink set h%d up\n", j, name, h, j, j)
				spoke[j] = fmt.Sprintf("addr add %s dev eth0\nlink set eth0 up\n", p)
			}
			return func() {
				run(b, nsb.String(), "ip", "-batch", "-")
				run(b, hubb.String(), "ip", "-n", hubName, "-batch", "-")
				for j, name := range names {
					run(b, spoke[j], "ip", "-n", name, "-batch", "-")
				}
			}
		},
		func(b *testing.B, k int) {
			checkTopology(b, hubName, names)
			reset(b, hubName, names)
		})
	b.ReportMetric(float64(n), "namespaces")
}
