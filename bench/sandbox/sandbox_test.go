package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/bench/internal/nsboxbin"
	"github.com/nsbox/nsbox/bench/internal/shellpeer"
	"github.com/nsbox/nsbox/internal/testutil"
)

// bin is the nsbox binary the benchmarks time.
var bin nsboxbin.Binary

func full() bool { return os.Getenv("NSBOX_BENCH_FULL") == "1" }

// lab makes a namespace with bridge br0 (10.80.0.1/22) and, with dhcp, nsbox's
// DHCP server on it; everything goes when b ends.
func lab(b *testing.B, bin string, dhcp bool) string {
	b.Helper()
	ns := testutil.NewNetns(b)
	testutil.Cmd(b, "ip", "-n", ns, "link", "add", "br0", "type", "bridge")
	testutil.Cmd(b, "ip", "-n", ns, "addr", "add", "10.80.0.1/22", "dev", "br0")
	testutil.Cmd(b, "ip", "-n", ns, "link", "set", "br0", "up")
	if dhcp {
		ctx, cancel := context.WithCancel(context.Background())
		srv := exec.CommandContext(ctx, bin, "-n", ns, "dhcpd", "br0", "--range", "10.80.0.10-10.80.3.250",
			"--router", "10.80.0.1", "--lease-time", "10m", "--lease-file", filepath.Join(b.TempDir(), "leases"))
		srv.Cancel = func() error { return srv.Process.Signal(syscall.SIGTERM) }
		srv.WaitDelay = 5 * time.Second
		if err := srv.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cancel(); _ = srv.Wait() })
		testutil.WaitUDPListen(b, ns, 67, nil)
	}
	return ns
}

// storm starts n jobs at once and returns when all are done, with each
// process's maximum RSS in KiB and the number of jobs that failed (the first
// few are logged).
func storm(b *testing.B, n int, cmd func(i int) *exec.Cmd) (maxrss []int64, failed int) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	out := make([]bytes.Buffer, n)
	rss := make([]int64, n)
	for i := 0; i < n; i++ {
		c := cmd(i)
		c.Stdout, c.Stderr = &out[i], &out[i]
		c.WaitDelay = 5 * time.Second
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = c.Run()
			if c.ProcessState != nil {
				if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
					rss[i] = ru.Maxrss
				}
			}
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			if failed < 3 {
				b.Logf("job %d: %v: %s", i, err, out[i].String())
			}
			failed++
		}
	}
	return rss, failed
}

// settle waits, off the clock, until the kernel has torn down every
// sandbox of the storm that just ended: their namespaces die after their
// processes exit, asynchronously, and the veth host ends leave br0 with
// them. Without it the next run (of any variant) would pay for this one's
// teardown.
func settle(b *testing.B, ns string) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	for i := 0; i < 600; i++ {
		var ports []struct{}
		testutil.IPJSON(b, &ports, "-n", ns, "link", "show", "master", "br0")
		if len(ports) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("br0 in %s still has ports 60 s after the storm", ns)
}

func BenchmarkStorm(b *testing.B) {
	testutil.RequirePriv(b)
	for _, tool := range []string{"ip", "unshare", "busybox"} {
		testutil.RequireTool(b, tool)
	}
	bin := bin.Need(b)
	n := 8
	if full() {
		n = 200
	}
	b.Run(fmt.Sprintf("n=%d/nsbox", n), func(b *testing.B) {
		ns := lab(b, bin, true)
		b.ReportAllocs()
		var peak int64
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			rss, failed := storm(b, n, func(int) *exec.Cmd {
				return exec.CommandContext(ctx, bin, "-n", ns, "run", "--ipc", "--pid", "--mount", "--net", "--no-init", "--bridge", "br0", "--dhcp",
					"--dhcp-timeout", "60s", "--", "/bin/true")
			})
			cancel()
			settle(b, ns)
			// nsbox's own sandboxes must all lease and run.
			if failed > 0 {
				b.Fatalf("%d of %d nsbox sandboxes failed", failed, n)
			}
			var sum int64
			for _, r := range rss {
				sum += r
			}
			peak = max(peak, sum)
		}
		b.ReportMetric(float64(peak)/1024, "MiB-rss-sum")
	})
	b.Run(fmt.Sprintf("n=%d/nsbox-lib", n), func(b *testing.B) {
		ns := lab(b, bin, true)
		b.ReportAllocs()
		var peak int64
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			c, err := stormLibCmd(ctx, ns, n)
			if err != nil {
				cancel()
				b.Fatal(err)
			}
			out, err := c.CombinedOutput()
			cancel()
			settle(b, ns)
			if err != nil {
				b.Fatalf("library storm: %v: %s", err, out)
			}
			peak = max(peak, maxRSSKiB(c))
		}
		b.ReportMetric(float64(peak)/1024, "MiB-rss")
	})
	b.Run(fmt.Sprintf("n=%d/shell", n), func(b *testing.B) {
		ns := lab(b, bin, true)
		dir := b.TempDir()
		script, err := shellpeer.Write(dir)
		if err != nil {
			b.Fatal(err)
		}
		tag := testutil.UniqueName("")[:6]
		b.ReportAllocs()
		worst := 0
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			_, failed := storm(b, n, func(j int) *exec.Cmd {
				return exec.CommandContext(ctx, "sh", script, ns,
					"sbx"+tag+strconv.Itoa(j), "hx"+tag+strconv.Itoa(j), dir)
			})
			cancel()
			settle(b, ns)
			worst = max(worst, failed)
		}
		// udhcpc gives up after its retries when 200 DISCOVERs flood the
		// bridge at once; those sandboxes count as done (failed), as the
		// script would see them.
		b.ReportMetric(float64(worst), "failed-jobs")
	})
}

// firstByte starts cmd with its stdout on a pipe and returns the time until
// the payload's first byte arrives, then waits for cmd to end.
func firstByte(b *testing.B, cmd *exec.Cmd) time.Duration {
	b.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	cmd.Stdout = w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w.Close()
	var one [1]byte
	_, rerr := r.Read(one[:])
	d := time.Since(start)
	if err := cmd.Wait(); err != nil || rerr != nil {
		b.Fatalf("%v: %v %v: %s", cmd.Args, err, rerr, stderr.String())
	}
	return d
}

func BenchmarkStaticStart(b *testing.B) {
	testutil.RequirePriv(b)
	bin := bin.Need(b)
	ns := lab(b, bin, false)
	cases := []struct {
		name string
		args []string
	}{
		{"nsbox-bridge-static", []string{"-n", ns, "run", "--net", "--bridge", "br0", "--addr", "10.80.1.2/22", "--gateway", "10.80.0.1", "--", "/bin/echo", "x"}},
		{"plain-net", []string{"run", "--net", "--", "/bin/echo", "x"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var ds []time.Duration
			for i := 0; i < b.N; i++ {
				ds = append(ds, firstByte(b, exec.Command(bin, c.args...)))
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "ms-to-payload-median")
		})
	}
}
