package nsclone

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// pdeathCases are the namespace sets ParentDeathSignal must work with: in a
// new PID namespace the payload cannot see its parent (getppid is 0), with
// the init it is the init's child.
var pdeathCases = map[string]*Spec{
	"mount":         {Namespaces: Mnt},
	"pid-no-init":   {Namespaces: PID | Mnt, MountProc: true},
	"pid-init":      {Namespaces: IPC | PID | Mnt, MountProc: true, Init: true},
	"pid-net-init":  {Namespaces: IPC | PID | Mnt | Net, MountProc: true, Init: true},
	"user-pid-init": {Namespaces: User | PID | Mnt, MapRoot: true, MountProc: true, Init: true},
}

func pdeathSpec(name string, args ...string) *Spec {
	base := pdeathCases[name]
	s := *base
	s.Path, s.Args = args[0], args
	s.ParentDeathSignal = unix.SIGKILL
	return &s
}

// pdeathMain is the parent that dies: it starts case name's sandbox running
// sleep, prints the sandbox's pid and waits to be killed.
func pdeathMain(name string) int {
	if pdeathCases[name] == nil {
		fmt.Fprintln(os.Stderr, "no case", name)
		return 2
	}
	p, err := Start(context.Background(), pdeathSpec(name, "/bin/sleep", "60"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(p.Pid())
	time.Sleep(60 * time.Second)
	return 0
}

// With ParentDeathSignal, the payload runs normally in every namespace set.
func TestParentDeathSignalRuns(t *testing.T) {
	testutil.RequirePriv(t)
	for name := range pdeathCases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := Run(ctx, pdeathSpec(name, "/bin/sh", "-c", "exit 3"))
			if err != nil || st.Code() != 3 {
				t.Fatalf("Run = %v, %v; want exit 3", st, err)
			}
		})
	}
}

// When the process that started the sandbox is SIGKILLed, the sandbox dies
// too: the kernel sends ParentDeathSignal.
func TestParentDeathSignalKills(t *testing.T) {
	testutil.RequirePriv(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for name := range pdeathCases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			parent := exec.CommandContext(ctx, self, "-test.run=^$")
			parent.Env = append(os.Environ(), "NSCLONE_PDEATH="+name)
			parent.Stderr = os.Stderr
			out, err := parent.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := parent.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				t.Fatalf("read sandbox pid: %v", err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil {
				t.Fatalf("sandbox pid %q: %v", line, err)
			}
			if !alive(pid) {
				t.Fatalf("sandbox %d is not running before its parent dies", pid)
			}
			if err := parent.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = parent.Wait()
			for i := 0; i < 250 && alive(pid); i++ {
				time.Sleep(20 * time.Millisecond)
			}
			if alive(pid) {
				_ = unix.Kill(pid, unix.SIGKILL)
				t.Fatalf("sandbox %d outlived its parent", pid)
			}
		})
	}
}

// alive tells whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// The kernel sends ParentDeathSignal when the thread that cloned the child
// exits: no thread churn in the caller may kill a running sandbox. The
// goroutine that called Start ends locked to its thread (which makes Go end
// that thread, as netns.Do does after a failed setns), and a hundred more
// goroutines do the same; the sandbox must still run.
func TestParentDeathSignalSurvivesThreadChurn(t *testing.T) {
	testutil.RequirePriv(t)
	for _, name := range []string{"mount", "pid-init"} {
		t.Run(name, func(t *testing.T) {
			started := make(chan *Process, 1)
			errs := make(chan error, 1)
			go func() {
				p, err := Start(context.Background(), pdeathSpec(name, "/bin/sleep", "30"))
				if err != nil {
					errs <- err
					return
				}
				started <- p
				runtime.LockOSThread() // exit locked: Go ends this thread
			}()
			var p *Process
			select {
			case p = <-started:
			case err := <-errs:
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Signal(unix.SIGKILL); _, _ = p.Wait() })
			for i := 0; i < 100; i++ {
				done := make(chan struct{})
				go func() {
					runtime.LockOSThread()
					close(done)
				}()
				<-done
			}
			time.Sleep(200 * time.Millisecond) // let the exiting threads go
			if !alive(p.Pid()) {
				t.Fatalf("sandbox %d died when threads of its caller exited", p.Pid())
			}
		})
	}
}
