package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
)

// runBuildNsbox builds bin/nsbox into a world-readable temporary folder (so
// that uid 65534 can run it too), removed when t ends.
func runBuildNsbox(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nsbox-run-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// go test puts its own GOROOT/bin first in PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "go"
	}
	bin := filepath.Join(dir, "nsbox")
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runNsbox runs the binary with args under a 30 s limit and returns stdout,
// stderr and the exit code.
func runNsbox(t *testing.T, bin string, cred *syscall.Credential, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH="+runFastMode(t))
	cmd.Dir = "/"
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return runCaptured(t, cmd)
}

// runFastMode is the NSBOX_NO_FASTPATH value of the subtest: TestRunCLI
// runs everything once through the C fast path and once through Go.
func runFastMode(t *testing.T) string {
	if strings.Contains(t.Name(), "/go-path") {
		return "1"
	}
	return "0"
}

// TestRunCLI drives the nsbox binary as a user would: exit codes, the one
// "nsbox:" line per error, the walkthrough line, signals; once with the C
// fast path (for the command lines it takes) and once with Go only.
func TestRunCLI(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	for _, mode := range []string{"fast-path", "go-path"} {
		t.Run(mode, func(t *testing.T) { testRunCLI(t, bin) })
	}
}

func testRunCLI(t *testing.T, bin string) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "script")
	if err := os.WriteFile(noexec, []byte("echo hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("bad input", func(t *testing.T) {
		netnsBefore := testutil.Cmd(t, "ip", "netns", "list")
		cases := []struct {
			args []string
			code int
			msg  string
		}{
			{[]string{"run", "--bogus", "true"}, 2, "nsbox: run: unknown flag: --bogus"},
			{[]string{"run", "--uid", "nsbox-no-user", "true"}, 2, "nsbox: run: --uid nsbox-no-user: no such user in /etc/passwd"},
			{[]string{"run", "--gid", "nsbox-no-group", "true"}, 2, "nsbox: run: --gid nsbox-no-group: no such group in /etc/group"},
			{[]string{"run", "--uid", "4294967296", "true"}, 2, `nsbox: run: --uid "4294967296": out of range (ids are 32-bit)`},
			{[]string{"run", "--hostname", strings.Repeat("h", 65), "true"}, 2, "nsbox: run: --hostname: 65 bytes, more than 64"},
			{[]string{"run", "--propagation", "weird", "true"}, 2, `nsbox: run: --propagation "weird": want private, slave, shared or unchanged`},
			{[]string{"run", "--ipc", "--mount", "--mount-proc", "true"}, 2, "nsbox: run: --mount-proc needs --pid"},
			{[]string{"run", "--map-root", "true"}, 2, "nsbox: run: --map-root needs --user"},
			{[]string{"run", "--netns", "nsbox-no-such-ns", "true"}, 125, "nsbox: run: --netns nsbox-no-such-ns: no such network namespace"},
			{[]string{"run", "--net", "--bridge", "nsbox-nobr0", "--dhcp", "true"}, 125, "nsbox: run: bridge nsbox-nobr0 does not exist (create it with nsbox bridge add nsbox-nobr0)"},
			{[]string{"run", "--", "/nonexistent/nsbox-cmd"}, 127, "nsbox: run: /nonexistent/nsbox-cmd: command not found (no such file or directory)"},
			{[]string{"run", "--", "nsbox-no-such-command"}, 127, "nsbox: run: nsbox-no-such-command: command not found"},
			// Empty values fail closed (exit 2), on both paths.
			{[]string{"run", "--uid", "", "id"}, 2, "nsbox: run: --uid: empty value"},
			{[]string{"run", "--gid", "", "id"}, 2, "nsbox: run: --gid: empty value"},
			{[]string{"run", "--netns", "", "true"}, 2, "nsbox: run: --netns: empty value"},
			{[]string{"run", "--hostname", "", "true"}, 2, "nsbox: run: --hostname: empty value"},
			{[]string{"run", "--propagation", "", "true"}, 2, "nsbox: run: --propagation: empty value"},
			{[]string{"run", "--net", "--bridge", "", "--addr", "10.0.0.2/24", "true"}, 2, "nsbox: run: --bridge: empty value"},
			{[]string{"run", "--net", "--bridge", "br0", "--addr", "10.0.0.2/24", "--ifname", "", "true"}, 2, "nsbox: run: --ifname: empty value"},
			{[]string{"run", "--", noexec}, 126, "nsbox: run: " + noexec + ": permission denied"},
			{[]string{"run", "--", dir}, 126, "nsbox: run: " + dir + ": permission denied"},
		}
		for _, c := range cases {
			stdout, stderr, code := runNsbox(t, bin, nil, c.args...)
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if code != c.code || len(lines) != 1 || !strings.HasPrefix(lines[0], c.msg) || stdout != "" {
				t.Errorf("nsbox %q: exit %d, stderr %q, stdout %q; want exit %d and one line starting %q",
					c.args, code, stderr, stdout, c.code, c.msg)
			}
		}
		if after := testutil.Cmd(t, "ip", "netns", "list"); after != netnsBefore {
			// Other tests may run in parallel; only flag names we used.
			if strings.Contains(after, "nsbox-no-such-ns") {
				t.Errorf("a bad run left a network namespace behind: %q", after)
			}
		}
	})

	t.Run("exit status", func(t *testing.T) {
		cases := []struct {
			args []string
			code int
		}{
			{[]string{"run", "--", "sh", "-c", "exit 3"}, 3},
			{[]string{"run", "--no-init", "--", "sh", "-c", "exit 4"}, 4},
			{[]string{"run", "--ipc", "--mount", "--", "sh", "-c", "kill -TERM $$"}, 143}, // no init, not PID 1
			{[]string{"run", "--", "sh", "-c", "kill -TERM $$"}, 143},                     // the init reports 128+15
			{[]string{"run", "--", "sh", "-c", "kill -KILL $$"}, 137},
		}
		for _, c := range cases {
			if _, stderr, code := runNsbox(t, bin, nil, c.args...); code != c.code || stderr != "" {
				t.Errorf("nsbox %q: exit %d stderr %q, want %d and nothing", c.args, code, stderr, c.code)
			}
		}
	})

	t.Run("walkthrough", func(t *testing.T) {
		stdout, stderr, code := runNsbox(t, bin, nil, "run", "--ipc", "--pid", "--mount", "--no-init", "--uid", "nobody", "--gid", "nogroup", "--", "sh", "-c", "id -u; echo $$; ps -e -o pid= | wc -l")
		if code != 0 || strings.Fields(stdout)[0] != "65534" || strings.Fields(stdout)[1] != "1" || strings.Fields(stdout)[2] != "3" {
			// ps sees sh, ps itself and wc (its pipe peer).
			t.Errorf("walkthrough line: exit %d, stdout %q, stderr %q; want 65534, 1 and 3 processes", code, stdout, stderr)
		}
		stdout, _, code = runNsbox(t, bin, nil, "run", "--", "sh", "-c", "echo $$; cat /proc/1/comm")
		if code != 0 || strings.Join(strings.Fields(stdout), " ") != "2 nsbox-init" {
			t.Errorf("default run: stdout %q exit %d, want the payload as 2 under nsbox-init", stdout, code)
		}
		stdout, _, code = runNsbox(t, bin, nil, "run", "--hostname", "nsbox-test-host", "--", "hostname")
		if code != 0 || strings.TrimSpace(stdout) != "nsbox-test-host" {
			t.Errorf("--hostname: stdout %q exit %d", stdout, code)
		}
		if h, _ := os.Hostname(); h == "nsbox-test-host" {
			t.Errorf("the host's hostname changed")
		}
	})

	t.Run("rootless", func(t *testing.T) {
		stdout, stderr, code := runNsbox(t, bin, &syscall.Credential{Uid: 65534, Gid: 65534},
			"run", "--user", "--map-root", "--pid", "--mount", "--", "sh", "-c", "id -u; cat /proc/self/uid_map; echo $$")
		f := strings.Fields(stdout)
		if code != 0 || len(f) != 5 || f[0] != "0" || f[1] != "0" || f[2] != "65534" || f[3] != "1" || f[4] != "2" {
			t.Errorf("rootless run: exit %d stdout %q stderr %q; want uid 0, map 0 65534 1, pid 2", code, stdout, stderr)
		}
	})

	t.Run("clone EPERM advice", func(t *testing.T) {
		// An ordinary user asking for namespaces without --user.
		_, stderr, code := runNsbox(t, bin, &syscall.Credential{Uid: 65534, Gid: 65534}, "run", "--pid", "--", "true")
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if code != 125 || len(lines) != 1 || !strings.HasPrefix(lines[0], "nsbox: run: clone pid: operation not permitted (creating namespaces needs root") {
			t.Errorf("unprivileged --pid: exit %d stderr %q; want 125 and the EPERM advice", code, stderr)
		}
	})

	t.Run("netns", func(t *testing.T) {
		name := testutil.NewNetns(t)
		var st unix.Stat_t
		if err := unix.Stat("/run/netns/"+name, &st); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := runNsbox(t, bin, nil, "run", "--netns", name, "--", "readlink", "/proc/self/ns/net")
		if want := fmt.Sprintf("net:[%d]", st.Ino); code != 0 || strings.TrimSpace(stdout) != want {
			t.Errorf("--netns: exit %d stdout %q stderr %q, want %s", code, stdout, stderr, want)
		}
	})

	t.Run("ctrl-c on a terminal", func(t *testing.T) {
		for _, flags := range [][]string{nil, {"--no-init"}} {
			out, code, err := runOnTerminal(t, bin, append(append([]string{"run"}, flags...), "--", "sh", "-c",
				`n=0; trap 'n=$((n+1)); echo INT$n' INT; trap 'echo TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done`), false)
			if err != nil || code != 7 || !strings.Contains(out, "INT1") || strings.Contains(out, "INT2") {
				t.Errorf("nsbox %v: Ctrl-C then SIGTERM: exit %d, %v, output %q; want INT1 once, then exit 7", flags, code, err, out)
			}
			// A SIGINT sent with kill while nsbox is in the foreground
			// is the user's too: forwarded (the Go path used to drop it).
			out, code, err = runOnTerminal(t, bin, append(append([]string{"run"}, flags...), "--", "sh", "-c",
				`n=0; trap 'n=$((n+1)); echo INT$n' INT; trap 'echo TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done`), true)
			if err != nil || code != 7 || !strings.Contains(out, "INT2") || strings.Contains(out, "INT3") {
				t.Errorf("nsbox %v: Ctrl-C, kill -INT, then SIGTERM: exit %d, %v, output %q; want INT1, INT2, then exit 7", flags, code, err, out)
			}
		}
	})

	t.Run("signals", func(t *testing.T) {
		for _, c := range []struct {
			flags []string
			sig   syscall.Signal
			code  int
		}{
			{nil, unix.SIGTERM, 7},
			{nil, unix.SIGINT, 8},
			{nil, unix.SIGHUP, 9},
			{[]string{"--no-init"}, unix.SIGTERM, 7},
			{[]string{"--no-init"}, unix.SIGUSR1, 10},
		} {
			args := append(append([]string{"run"}, c.flags...), "--", "sh", "-c",
				`trap 'exit 7' TERM; trap 'exit 8' INT; trap 'exit 9' HUP; trap 'exit 10' USR1; echo ready; while :; do sleep 0.05; done`)
			code, err := runSignalled(bin, runFastMode(t), args, c.sig)
			if err != nil || code != c.code {
				t.Errorf("nsbox %v got %v: exit %d, %v; want %d", c.flags, c.sig, code, err, c.code)
			}
		}
	})
}

// runSignalled starts nsbox, waits for the payload's "ready", sends sig to
// nsbox and returns its exit code.
func runSignalled(bin, noFast string, args []string, sig syscall.Signal) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH="+noFast)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, fmt.Errorf("read ready: %q %v", line, err)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return 0, err
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// runOnTerminal runs nsbox as the session leader of a new pseudo-terminal,
// types Ctrl-C once the payload is ready (then, with kill, sends SIGINT to
// nsbox from this process as well), then sends SIGTERM to nsbox, and
// returns what the terminal showed and the exit code. Whatever happens, the
// whole process group (nsbox and the payload) is killed at the end.
func runOnTerminal(t *testing.T, bin string, args []string, kill bool) (string, int, error) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return "", 0, err
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return "", 0, err
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return "", 0, err
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return "", 0, err
	}
	defer slave.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NSBOX_NO_FASTPATH="+runFastMode(t))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	slave.Close()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	defer func() {
		// nsbox leads its session and process group; the payload is in it.
		unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	}()
	chunks := make(chan string, 64)
	go func() {
		buf := make([]byte, 256)
		for {
			k, err := master.Read(buf)
			if k > 0 {
				chunks <- string(buf[:k])
			}
			if err != nil {
				close(chunks)
				return
			}
		}
	}()
	var out strings.Builder
	read := func(want string, limit time.Duration) bool {
		timer := time.NewTimer(limit)
		defer timer.Stop()
		for !strings.Contains(out.String(), want) {
			select {
			case c, ok := <-chunks:
				if !ok {
					return false
				}
				out.WriteString(c)
			case <-timer.C:
				return false
			}
		}
		return true
	}
	if read("ready", 10*time.Second) {
		master.Write([]byte{3}) // Ctrl-C
		read("INT1", 5*time.Second)
		if kill {
			// kill -INT from another process while nsbox is in the
			// terminal's foreground: forwarded, once. Standard signals do
			// not queue: sent while nsbox has not yet taken the
			// terminal's SIGINT, the kill would merge into it (keeping
			// the terminal's si_code) and rightly not be forwarded. So
			// wait until nsbox has nothing pending first.
			waitNoPendingSignal(t, cmd.Process.Pid, unix.SIGINT, 5*time.Second)
			cmd.Process.Signal(unix.SIGINT)
			read("INT2", 5*time.Second)
			read("INT3", 500*time.Millisecond) // room for a duplicate to show
		} else {
			read("INT2", 500*time.Millisecond) // room for a duplicate to show
		}
	}
	cmd.Process.Signal(unix.SIGTERM)
	select {
	case err = <-waited:
	case <-time.After(10 * time.Second):
		unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		return out.String(), 0, fmt.Errorf("nsbox did not exit after SIGTERM: %v", <-waited)
	}
	read("TERM", 100*time.Millisecond)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), nil
	}
	return out.String(), 0, err
}

// waitNoPendingSignal waits, at most limit, until sig is pending neither
// for process pid nor for any of its descendants (the init, the payload),
// in any thread (/proc/PID/task/*/status ShdPnd and SigPnd): each of them
// passes the signal on by its si_code, which a merge would lose.
func waitNoPendingSignal(t *testing.T, pid int, sig unix.Signal, limit time.Duration) {
	t.Helper()
	bit := uint64(1) << (uint(sig) - 1)
	deadline := time.Now().Add(limit)
	for {
		pending := false
		for _, p := range processTree(pid) {
			tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", p))
			for _, f := range tasks {
				b, err := os.ReadFile(f)
				if err != nil {
					continue
				}
				for _, l := range strings.Split(string(b), "\n") {
					k, v, ok := strings.Cut(l, ":")
					if !ok || (k != "ShdPnd" && k != "SigPnd") {
						continue
					}
					if m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && m&bit != 0 {
						pending = true
					}
				}
			}
		}
		if !pending || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// processTree returns pid and its descendants, from /proc/PID/task/*/children.
func processTree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out) && i < 64; i++ {
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			for _, w := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(w); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}
