package view

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/bench/internal/nsboxbin"
	"github.com/nsbox/nsbox/internal/testutil"
)

// bin is the nsbox binary the benchmarks time.
var bin nsboxbin.Binary

// nsboxBin is NSBOX_BIN, else the Makefile's bin/nsbox, else a fresh build.
func nsboxBin(b *testing.B) string {
	b.Helper()
	p, err := bin.Path(filepath.Join("..", ".."))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	bin.Close()
	os.Exit(code)
}

// runAll runs argv b.N times as a shell would.
func runAll(b *testing.B, argv []string, env []string) {
	b.ReportAllocs()
	var stderr bytes.Buffer
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("%q: %v: %s", argv, err, stderr.String())
		}
	}
}

var viewBins = []string{"/usr", "/lib", "/lib64", "/bin"}

// BenchmarkRootfsView: the same view (an empty rootfs, the host's
// binaries read-only, /dev, /proc of a new PID namespace, a /tmp tmpfs)
// through nsbox and through bubblewrap, running /bin/true.
func BenchmarkRootfsView(b *testing.B) {
	testutil.RequirePriv(b)
	bwrap := testutil.RequireTool(b, "bwrap")
	bin := nsboxBin(b)
	root := b.TempDir()
	nsbox := []string{bin, "run", "--ipc", "--pid", "--rootfs", root}
	peer := []string{bwrap, "--unshare-ipc", "--unshare-pid", "--bind", root, "/"}
	for _, d := range viewBins {
		nsbox = append(nsbox, "--ro-bind", d+":"+d)
		peer = append(peer, "--ro-bind", d, d)
	}
	nsbox = append(nsbox, "--dev", "--tmpfs", "/tmp", "--", "/bin/true")
	peer = append(peer, "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--", "/bin/true")
	b.Run("nsbox", func(b *testing.B) { runAll(b, nsbox, os.Environ()) })
	b.Run("bwrap", func(b *testing.B) { runAll(b, peer, os.Environ()) })
}

// BenchmarkRootfsViewAlternated: the view of BenchmarkRootfsView through
// nsbox's C fast path, bubblewrap and nsbox's Go path
// (NSBOX_NO_FASTPATH=1), one of each per round in a rotating order, so
// that the machine's load hits all three alike; it reports the medians and
// their ratios to bubblewrap's.
func BenchmarkRootfsViewAlternated(b *testing.B) {
	testutil.RequirePriv(b)
	bwrap := testutil.RequireTool(b, "bwrap")
	bin := nsboxBin(b)
	root := b.TempDir()
	nsbox := []string{bin, "run", "--ipc", "--pid", "--rootfs", root}
	peer := []string{bwrap, "--unshare-ipc", "--unshare-pid", "--bind", root, "/"}
	for _, d := range viewBins {
		nsbox = append(nsbox, "--ro-bind", d+":"+d)
		peer = append(peer, "--ro-bind", d, d)
	}
	nsbox = append(nsbox, "--dev", "--tmpfs", "/tmp", "--", "/bin/true")
	peer = append(peer, "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--", "/bin/true")
	goEnv := append(os.Environ(), "NSBOX_NO_FASTPATH=1")
	runs := []struct {
		argv []string
		env  []string
	}{{nsbox, os.Environ()}, {peer, os.Environ()}, {nsbox, goEnv}}
	times := make([][]time.Duration, len(runs))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range runs {
			j := (i + k) % len(runs)
			times[j] = append(times[j], timeRun(b, runs[j].argv, runs[j].env))
		}
	}
	fast, bw, goPath := median(times[0]), median(times[1]), median(times[2])
	b.ReportMetric(float64(fast)/1e6, "fast-ms")
	b.ReportMetric(float64(bw)/1e6, "bwrap-ms")
	b.ReportMetric(float64(goPath)/1e6, "go-ms")
	b.ReportMetric(float64(fast)/float64(bw), "fast/bwrap")
	b.ReportMetric(float64(goPath)/float64(bw), "go/bwrap")
}

// timeRun runs argv once and returns how long it took.
func timeRun(b *testing.B, argv, env []string) time.Duration {
	var stderr bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%q: %v: %s", argv, err, stderr.String())
	}
	return time.Since(start)
}

// median is the middle of d (sorted in place).
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// BenchmarkNamedRun: run --name (a record written and removed in
// /run/nsbox/sandboxes, here a folder of its own) against the same run
// without a name, both on the C fast path, and the named run on the Go
// path (NSBOX_NO_FASTPATH=1) for reference: one of each per round in a
// rotating order, so that the machine's load hits them alike. It reports
// the medians, the ratio named/plain (the target: at most 1.1) and
// the 1-minute load average at the end. The state folder is on the disk's
// file system (state=disk, b.TempDir) and, where /dev/shm is a tmpfs, on a
// tmpfs (state=tmpfs), as /run is on most systems.
func BenchmarkNamedRun(b *testing.B) {
	testutil.RequirePriv(b)
	bin := nsboxBin(b)
	dirs := []struct{ name, dir string }{{"disk", b.TempDir()}}
	var st syscall.Statfs_t
	if syscall.Statfs("/dev/shm", &st) == nil && st.Type == 0x01021994 { // TMPFS_MAGIC
		d, err := os.MkdirTemp("/dev/shm", "nsbox-bench-state")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		dirs = append(dirs, struct{ name, dir string }{"tmpfs", d})
	}
	for _, d := range dirs {
		b.Run("state="+d.name, func(b *testing.B) { namedRun(b, bin, d.dir) })
	}
}

// namedRun is BenchmarkNamedRun with its state folder in dir.
func namedRun(b *testing.B, bin, state string) {
	env := append(os.Environ(), "NSBOX_STATE_DIR="+state)
	goEnv := append(append([]string{}, env...), "NSBOX_NO_FASTPATH=1")
	name := "bench" + strconv.Itoa(os.Getpid())
	named := []string{bin, "run", "--name", name, "--", "/bin/true"}
	plain := []string{bin, "run", "--", "/bin/true"}
	runs := []struct {
		argv []string
		env  []string
	}{{named, env}, {plain, env}, {named, goEnv}}
	times := make([][]time.Duration, len(runs))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range runs {
			j := (i + k) % len(runs)
			times[j] = append(times[j], timeRun(b, runs[j].argv, runs[j].env))
		}
	}
	b.StopTimer()
	nm, pl, gp := median(times[0]), median(times[1]), median(times[2])
	b.ReportMetric(float64(nm)/1e6, "named-ms")
	b.ReportMetric(float64(pl)/1e6, "plain-ms")
	b.ReportMetric(float64(gp)/1e6, "named-go-ms")
	b.ReportMetric(float64(nm)/float64(pl), "named/plain")
	b.ReportMetric(float64(gp)/float64(pl), "named-go/plain")
	b.ReportMetric(loadAvg(b), "load1")
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		b.Errorf("records left: %v", ents)
	}
}

// loadAvg is the 1-minute load average (/proc/loadavg).
func loadAvg(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		b.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkEnter: nsbox enter PID against nsenter --all -t PID, the same
// /bin/true in every namespace of a sandbox that sleeps meanwhile.
func BenchmarkEnter(b *testing.B) {
	testutil.RequirePriv(b)
	nsenter := testutil.RequireTool(b, "nsenter")
	bin := nsboxBin(b)
	pidfile := filepath.Join(b.TempDir(), "pid")
	sb := exec.Command(bin, "run", "--uts", "--net", "--pidfile", pidfile, "--", "sleep", "600")
	if err := sb.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		// The sandbox first (killing nsbox alone would leave it running).
		if data, err := os.ReadFile(pidfile); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
		sb.Process.Kill()
		sb.Wait()
	}()
	var pid string
	for i := 0; i < 500 && pid == ""; i++ {
		if data, err := os.ReadFile(pidfile); err == nil && strings.HasSuffix(string(data), "\n") {
			pid = strings.TrimSpace(string(data))
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if pid == "" {
		b.Fatal("the sandbox did not start")
	}
	b.Run("nsbox", func(b *testing.B) { runAll(b, []string{bin, "enter", pid, "--", "/bin/true"}, os.Environ()) })
	b.Run("nsenter", func(b *testing.B) { runAll(b, []string{nsenter, "--all", "-t", pid, "/bin/true"}, os.Environ()) })
}
