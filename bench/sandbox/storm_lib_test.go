package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/nsnet"
)

// The library storm runs in a child process (this test binary, re-executed
// with stormLibEnv set) so that its peak memory is its own maximum RSS and
// not the benchmark harness's.
const (
	stormLibEnv = "NSBOX_BENCH_STORM_LIB" // "LABNS,N"
)

func TestMain(m *testing.M) {
	if v := os.Getenv(stormLibEnv); v != "" {
		os.Exit(stormLibMain(v))
	}
	os.Exit(bin.Run(m))
}

// stormLibMain parses "LABNS,N" and runs the storm, reporting failures on
// stderr; it returns the process's exit code.
func stormLibMain(v string) int {
	var ns string
	var n int
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == ',' {
			ns = v[:i]
			n, _ = strconv.Atoi(v[i+1:])
			break
		}
	}
	if ns == "" || n <= 0 {
		fmt.Fprintf(os.Stderr, "%s=%q: want LABNS,N\n", stormLibEnv, v)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := stormLib(ctx, ns, n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// stormLib starts n sandboxes at once through the Go API, as a Go program
// built on nsbox would: each gets new IPC, PID, mount and network
// namespaces with a fresh /proc, a veth on br0 in namespace
// labNS, a DHCP lease before its payload starts, and runs /bin/true. It
// returns once all are done, with the first failure.
func stormLib(ctx context.Context, labNS string, n int) error {
	lab, err := netns.Open(labNS)
	if err != nil {
		return err
	}
	defer lab.Close()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = oneLibSandbox(ctx, lab)
		}(i)
	}
	wg.Wait()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d sandboxes failed; first: %w", failed, n, first)
	}
	return nil
}

// oneLibSandbox is `nsbox -n LAB run --ipc --pid --mount --net --no-init
// --bridge br0 --dhcp -- /bin/true` through the library: the payload is PID
// 1 of its namespace, as under the shell peer's `unshare --fork --pid`.
func oneLibSandbox(ctx context.Context, lab *netns.Handle) error {
	cfg := nsnet.Config{Bridge: "br0", BridgeNS: lab, DHCP: true, DHCPTimeout: 60 * time.Second}
	if os.Getenv("NSBOX_BENCH_STORM_LOG") == "1" {
		t0 := time.Now()
		cfg.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%8.3f %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
		}
	}
	var att *nsnet.Attachment
	spec := &nsclone.Spec{
		Path:              "/bin/true",
		Args:              []string{"true"},
		Namespaces:        nsclone.IPC | nsclone.PID | nsclone.Mnt | nsclone.Net,
		MountProc:         true,
		ParentDeathSignal: unix.SIGKILL,
		BeforeExec: func(pid int) error {
			a, err := nsnet.Attach(ctx, &cfg, pid)
			att = a
			return err
		},
	}
	p, err := nsclone.Start(ctx, spec)
	if err != nil {
		return err
	}
	st, werr := p.Wait()
	derr := att.Detach(context.WithoutCancel(ctx))
	switch {
	case werr != nil:
		return werr
	case st.Code() != 0:
		return fmt.Errorf("payload exited %d", st.Code())
	}
	return derr
}

// stormLibCmd is the child process that runs stormLib over n sandboxes.
func stormLibCmd(ctx context.Context, labNS string, n int) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := exec.CommandContext(ctx, self, "-test.run=^$")
	c.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", stormLibEnv, labNS, n))
	return c, nil
}

// maxRSSKiB is the child's maximum resident set size.
func maxRSSKiB(c *exec.Cmd) int64 {
	if c.ProcessState == nil {
		return 0
	}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}
