package limits

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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
