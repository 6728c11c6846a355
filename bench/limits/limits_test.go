package limits

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsbox/nsbox/bench/internal/nsboxbin"
	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/sandbox/seccomp"
)

// bin is the nsbox binary the benchmarks time.
var bin nsboxbin.Binary

// nsbox returns NSBOX_BIN, else the Makefile's bin/nsbox, else a fresh build.
func nsbox(b *testing.B) string {
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

// runEach runs argv b.N times (with extra files from files(), opened per
// run), failing on a non-zero exit. With retries > 0 a failed run is tried
// again up to that many times (bwrap's recursive read-only bind of / fails
// when another process's mount below / goes away meanwhile, which happens
// on a machine where other tests run); the failed attempts stay on the
// clock and their count is reported.
func runEach(b *testing.B, argv []string, files func() []*os.File, retries int) {
	b.ReportAllocs()
	var stderr bytes.Buffer
	failed := 0
	for i := 0; i < b.N; i++ {
		for try := 0; ; try++ {
			stderr.Reset()
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stderr = &stderr
			if files != nil {
				cmd.ExtraFiles = files()
			}
			err := cmd.Run()
			for _, f := range cmd.ExtraFiles {
				f.Close()
			}
			if err == nil {
				break
			}
			if try >= retries {
				b.Fatalf("%v: %v: %s", argv, err, stderr.String())
			}
			failed++
		}
	}
	if retries > 0 {
		b.ReportMetric(float64(failed), "retries")
	}
}

// defaultProgramFile writes nsbox's compiled default seccomp program as
// struct sock_filter bytes (what bwrap --seccomp reads).
func defaultProgramFile(b *testing.B) string {
	b.Helper()
	prog, err := seccomp.Compile(seccomp.Default())
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	for _, f := range prog {
		_ = binary.Write(&buf, binary.NativeEndian, f)
	}
	p := filepath.Join(b.TempDir(), "default.bpf")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkSandboxCLI: run --sandbox against bwrap's same posture and
// against plain run.
func BenchmarkSandboxCLI(b *testing.B) {
	testutil.RequirePriv(b)
	bin := nsbox(b)
	bwrap := testutil.RequireTool(b, "bwrap")
	prog := defaultProgramFile(b)
	b.Run("nsbox-sandbox", func(b *testing.B) {
		runEach(b, []string{bin, "run", "--sandbox", "--", "/bin/true"}, nil, 0)
	})
	b.Run("bwrap", func(b *testing.B) {
		runEach(b, []string{bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev",
			"--proc", "/proc", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--seccomp", "3", "--", "/bin/true"},
			func() []*os.File {
				f, err := os.Open(prog)
				if err != nil {
					b.Fatal(err)
				}
				return []*os.File{f}
			}, 3)
	})
	b.Run("run-plain", func(b *testing.B) {
		runEach(b, []string{bin, "run", "--", "/bin/true"}, nil, 0)
	})
}

// BenchmarkCgroupCLI: the price of --memory and --pids (a group per run).
func BenchmarkCgroupCLI(b *testing.B) {
	testutil.RequirePriv(b)
	bin := nsbox(b)
	b.Run("nsbox-memory-pids", func(b *testing.B) {
		runEach(b, []string{bin, "run", "--memory", "64m", "--pids", "100", "--", "/bin/true"}, nil, 0)
	})
	b.Run("run-plain", func(b *testing.B) {
		runEach(b, []string{bin, "run", "--", "/bin/true"}, nil, 0)
	})
}

// BenchmarkSeccompSpawn: the cost of loading the default program in the
// child, spawn against spawn.
func BenchmarkSeccompSpawn(b *testing.B) {
	testutil.RequirePriv(b)
	base := nsclone.Spec{Path: "/bin/true", Args: []string{"true"}, Env: []string{}, NoNewPrivs: true}
	withFilter := base
	withFilter.Seccomp = seccomp.Default()
	for _, c := range []struct {
		name string
		spec *nsclone.Spec
	}{{"nsclone-seccomp-default", &withFilter}, {"spawn-no-filter", &base}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				st, err := nsclone.Run(context.Background(), c.spec)
				if err != nil || st.Code() != 0 {
					b.Fatalf("%v %v", st, err)
				}
			}
		})
	}
}

// BenchmarkSeccompAlternated: the same two spawns as BenchmarkSeccompSpawn,
// one of each per round in a rotating order, so that both see the same
// load: reports their medians (ms) and the median of the rounds' differences
// (added-ms, the "loading --seccomp default adds"). Rounds:
// NSBOX_BENCH_ROUNDS (default 400), each b.N.
func BenchmarkSeccompAlternated(b *testing.B) {
	testutil.RequirePriv(b)
	base := nsclone.Spec{Path: "/bin/true", Args: []string{"true"}, Env: []string{}, NoNewPrivs: true}
	withFilter := base
	withFilter.Seccomp = seccomp.Default()
	specs := []*nsclone.Spec{&base, &withFilter}
	rounds := 400
	if v, err := strconv.Atoi(os.Getenv("NSBOX_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	for i := 0; i < b.N; i++ {
		times := make([][]time.Duration, len(specs))
		var diffs []time.Duration
		for r := 0; r < rounds; r++ {
			var d [2]time.Duration
			for k := range specs {
				j := (k + r) % len(specs)
				t0 := time.Now()
				st, err := nsclone.Run(context.Background(), specs[j])
				d[j] = time.Since(t0)
				if err != nil || st.Code() != 0 {
					b.Fatalf("%v %v", st, err)
				}
				times[j] = append(times[j], d[j])
			}
			diffs = append(diffs, d[1]-d[0])
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(medianDur(times[0])), "nofilter-ms")
		b.ReportMetric(ms(medianDur(times[1])), "filter-ms")
		b.ReportMetric(ms(medianDur(diffs)), "added-ms")
	}
}

// BenchmarkSeccompLoad: the seccomp(2) call that installs the default
// program, timed alone in a forked child by testdata/seccomp_load.c; its
// ns/op is that call's (the forks are off the clock).
func BenchmarkSeccompLoad(b *testing.B) {
	testutil.RequirePriv(b)
	cc := testutil.RequireTool(b, "cc")
	prog := defaultProgramFile(b)
	probe := filepath.Join(b.TempDir(), "seccomp_load")
	if out, err := exec.Command(cc, "-O2", "-o", probe, "testdata/seccomp_load.c").CombinedOutput(); err != nil {
		b.Fatalf("cc: %v: %s", err, out)
	}
	b.Run("nsbox-default-load", func(b *testing.B) {
		out, err := exec.Command(probe, prog, strconv.Itoa(b.N)).Output()
		if err != nil {
			b.Fatalf("%s: %v", probe, err)
		}
		var total float64
		for _, l := range strings.Fields(string(out)) {
			v, err := strconv.ParseFloat(l, 64)
			if err != nil {
				b.Fatal(err)
			}
			total += v
		}
		// The benchmark's own time includes the forks: report the loads.
		b.ReportMetric(total/float64(b.N), "load-ns/op")
	})
}

// BenchmarkSeccompCompile: the default profile (built ahead of time)
// against compiling a copy of it, as a profile FILE is.
func BenchmarkSeccompCompile(b *testing.B) {
	copyOf := *seccomp.Default()
	b.Run("nsbox-default", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := seccomp.Compile(seccomp.Default()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compile-profile", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := seccomp.Compile(&copyOf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSandboxAlternated: run --sandbox (C fast path, and Go's path
// with NSBOX_NO_FASTPATH=1), run --pids 1024 alone, plain run and bwrap's
// same posture, one of each per round in a rotating order, so that all see
// the same load; reports the medians (ms) and their ratios. Rounds:
// NSBOX_BENCH_ROUNDS (default 200), each b.N.
func BenchmarkSandboxAlternated(b *testing.B) {
	testutil.RequirePriv(b)
	bin := nsbox(b)
	bwrap := testutil.RequireTool(b, "bwrap")
	prog := defaultProgramFile(b)
	rounds := 200
	if v, err := strconv.Atoi(os.Getenv("NSBOX_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	type variant struct {
		name  string
		argv  []string
		env   []string
		files bool
	}
	vs := []variant{
		{name: "sandbox-c", argv: []string{bin, "run", "--sandbox", "--", "/bin/true"}},
		{name: "sandbox-go", argv: []string{bin, "run", "--sandbox", "--", "/bin/true"}, env: []string{"NSBOX_NO_FASTPATH=1"}},
		{name: "pids-c", argv: []string{bin, "run", "--pids", "1024", "--", "/bin/true"}},
		{name: "plain", argv: []string{bin, "run", "--", "/bin/true"}},
		{name: "bwrap", argv: []string{bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev",
			"--proc", "/proc", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--seccomp", "3", "--", "/bin/true"}, files: true},
	}
	one := func(v variant) (time.Duration, error) {
		cmd := exec.Command(v.argv[0], v.argv[1:]...)
		cmd.Env = append(os.Environ(), v.env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if v.files {
			f, err := os.Open(prog)
			if err != nil {
				return 0, err
			}
			defer f.Close()
			cmd.ExtraFiles = []*os.File{f}
		}
		t0 := time.Now()
		err := cmd.Run()
		d := time.Since(t0)
		if err != nil {
			return 0, fmt.Errorf("%v: %v: %s", v.argv, err, stderr.String())
		}
		return d, nil
	}
	for i := 0; i < b.N; i++ {
		times := make([][]time.Duration, len(vs))
		retries := 0
		for r := 0; r < rounds; r++ {
			for k := range vs {
				j := (k + r) % len(vs)
				for try := 0; ; try++ {
					d, err := one(vs[j])
					if err == nil {
						times[j] = append(times[j], d)
						break
					}
					// bwrap's recursive read-only bind of / fails when
					// another process's mount below / goes away meanwhile.
					if vs[j].name != "bwrap" || try >= 3 {
						b.Fatal(err)
					}
					retries++
				}
			}
		}
		med := map[string]float64{}
		for j, v := range vs {
			med[v.name] = float64(medianDur(times[j]).Microseconds()) / 1000
			b.ReportMetric(med[v.name], v.name+"-ms")
		}
		b.ReportMetric(med["sandbox-c"]/med["plain"], "sandbox/plain")
		b.ReportMetric(med["sandbox-c"]/med["bwrap"], "sandbox/bwrap")
		b.ReportMetric(med["sandbox-go"]/med["bwrap"], "sandbox-go/bwrap")
		b.ReportMetric(med["pids-c"]/med["plain"], "pids/plain")
		b.ReportMetric(float64(retries), "bwrap-retries")
	}
}

func medianDur(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkCgroupJoin: a new process moving itself into a v1 group through
// cgroup.procs (the whole thread group: the kernel takes its global
// cgroup_threadgroup_rwsem for writing and waits for an RCU grace period)
// against tasks (the writing thread alone, which skips that lock), each
// after 30 ms idle, as separate nsbox runs are; timed alone in a forked
// child by testdata/cgroup_join.c. join-ns/op is the median write.
func BenchmarkCgroupJoin(b *testing.B) {
	testutil.RequirePriv(b)
	cc := testutil.RequireTool(b, "cc")
	const hier = "/sys/fs/cgroup/pids"
	if _, err := os.Stat(hier + "/tasks"); err != nil {
		b.Skip("needs the v1 pids hierarchy at " + hier)
	}
	probe := filepath.Join(b.TempDir(), "cgroup_join")
	if out, err := exec.Command(cc, "-O2", "-o", probe, "testdata/cgroup_join.c").CombinedOutput(); err != nil {
		b.Fatalf("cc: %v: %s", err, out)
	}
	for _, file := range []string{"tasks", "cgroup.procs"} {
		b.Run(file, func(b *testing.B) {
			out, err := exec.Command(probe, hier, file, strconv.Itoa(b.N), "30000").Output()
			if err != nil {
				b.Fatalf("%s: %v", probe, err)
			}
			var ds []time.Duration
			for _, l := range strings.Fields(string(out)) {
				v, err := strconv.ParseInt(l, 10, 64)
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Duration(v))
			}
			b.ReportMetric(float64(medianDur(ds).Nanoseconds()), "join-ns/op")
		})
	}
}
