// Command nsbox-bench runs every nsbox benchmark package side by side with its
// peers (unshare, ip, brctl, dnsmasq's clients...) and writes the report:
// bench/RESULTS.md (machine, kernel, date, medians, ratios) and
// bench/results.svg (grouped bars). `make bench` runs it as root.
//
// It runs one package at a time so that progress shows while it runs, with
// NSBOX_BENCH_FULL=1 so the benchmarks use their full sizes.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nsbox/nsbox/bench/report"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "nsbox-bench: "+err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("nsbox-bench", flag.ContinueOnError)
	count := fs.Int("count", 5, "runs of every benchmark (medians are taken over them)")
	benchtime := fs.String("benchtime", "", "go test -benchtime for every benchmark (default: go's)")
	filter := fs.String("bench", ".", "go test -bench regular expression")
	outDir := fs.String("out", ".", "folder for RESULTS.md, results.svg and raw.txt")
	pkgs := fs.String("pkgs", "", "comma-separated benchmark packages, run in this order (default: every folder of the bench module that has tests, the established ones first)")
	from := fs.String("from", "", "build the report from these files of saved benchmark output (comma-separated) instead of running")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var raw bytes.Buffer
	var failures []string
	list, err := benchPackages(*pkgs)
	if err != nil {
		return err
	}
	if *from != "" {
		list = nil
		for _, f := range strings.Split(*from, ",") {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			raw.Write(b)
		}
	}
	for i, pkg := range list {
		if _, err := os.Stat(pkg); err != nil {
			fmt.Fprintf(stdout, "[%d/%d] %s: skipped (%v)\n", i+1, len(list), pkg, err)
			continue
		}
		fmt.Fprintf(stdout, "[%d/%d] %s\n", i+1, len(list), pkg)
		start := time.Now()
		goArgs := []string{"test", "-run", "^$", "-bench", *filter, "-benchmem", "-count", strconv.Itoa(*count), "-timeout", "60m"}
		if *benchtime != "" {
			goArgs = append(goArgs, "-benchtime", *benchtime)
		}
		goArgs = append(goArgs, pkg)
		cmd := exec.CommandContext(ctx, "go", goArgs...)
		cmd.Env = append(os.Environ(), "NSBOX_BENCH_FULL=1")
		cmd.Stdout = io.MultiWriter(stdout, &raw)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			// Keep going: the other packages' comparisons still count,
			// and the report names what failed.
			failures = append(failures, fmt.Sprintf("%s: %v", pkg, err))
			fmt.Fprintf(stdout, "[%d/%d] %s FAILED: %v\n", i+1, len(list), pkg, err)
			continue
		}
		fmt.Fprintf(stdout, "[%d/%d] %s done in %s\n", i+1, len(list), pkg, time.Since(start).Round(time.Second))
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*outDir, "raw.txt"), raw.Bytes(), 0o644); err != nil {
		return err
	}
	samples, err := report.Parse(&raw)
	if err != nil {
		return err
	}
	results := report.Summarize(samples)
	m := machine()
	var md bytes.Buffer
	if err := report.WriteMarkdown(&md, m, results, "make bench"); err != nil {
		return err
	}
	for _, f := range failures {
		fmt.Fprintf(&md, "\nFAILED: %s (its results above are partial or missing)\n", f)
	}
	if err := os.WriteFile(filepath.Join(*outDir, "RESULTS.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	written := []string{filepath.Join(*outDir, "RESULTS.md"), filepath.Join(*outDir, "raw.txt")}
	if hasTimeRatio(report.Ratios(results)) {
		var svg bytes.Buffer
		title := fmt.Sprintf("nsbox against its peers, %s, Linux %s", m.Date, m.Kernel)
		if err := report.WriteChart(&svg, report.Ratios(results), title); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*outDir, "results.svg"), svg.Bytes(), 0o644); err != nil {
			return err
		}
		written = append(written, filepath.Join(*outDir, "results.svg"))
	} else {
		// A run of benchmarks without a peer (a GC of 1000, say) has
		// nothing to chart; its report still counts.
		fmt.Fprintln(stdout, "no comparison against a peer: no chart")
	}
	fmt.Fprintf(stdout, "wrote %s\n", strings.Join(written, ", "))
	if len(failures) > 0 {
		return fmt.Errorf("%d benchmark packages failed: %s", len(failures), strings.Join(failures, "; "))
	}
	return nil
}

// machine describes this host from /proc and uname.
func machine() report.Machine {
	m := report.Machine{Date: time.Now().UTC().Format("2006-01-02"), Go: runtime.Version(), Cores: runtime.NumCPU()}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = cstr(u.Release[:])
		m.Host = cstr(u.Machine[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.IndexByte(l, ':'); i >= 0 {
					m.CPU = strings.TrimSpace(l[i+1:])
				}
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemoryGiB = kb / (1 << 20)
		}
	}
	return m
}

func cstr(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

// firstPackages run before the others, in this order, so that the report
// keeps its sections in the order readers know; any other folder of the
// bench module with tests runs after them, alphabetically.
var firstPackages = []string{"./spawn", "./netlink", "./bridge", "./dhcp", "./sandbox"}

// benchPackages returns the packages to run: the comma-separated list when
// one is given, else every folder of the current directory (the bench
// module's root) that holds a _test.go file, report and cmd excepted.
func benchPackages(flagValue string) ([]string, error) {
	if flagValue != "" {
		return strings.Split(flagValue, ","), nil
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("list benchmark packages: %w", err)
	}
	found := map[string]bool{}
	var rest []string
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "report" || e.Name() == "cmd" {
			continue
		}
		tests, err := filepath.Glob(filepath.Join(e.Name(), "*_test.go"))
		if err != nil || len(tests) == 0 {
			continue
		}
		found["./"+e.Name()] = true
		rest = append(rest, "./"+e.Name())
	}
	var list []string
	for _, p := range firstPackages {
		if found[p] {
			list = append(list, p)
			delete(found, p)
		}
	}
	for _, p := range rest {
		if found[p] {
			list = append(list, p)
		}
	}
	return list, nil
}

// hasTimeRatio reports whether any comparison can be charted (the chart
// draws time comparisons only).
func hasTimeRatio(rs []report.Ratio) bool {
	for _, r := range rs {
		if !r.Memory() {
			return true
		}
	}
	return false
}
