package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// viewBins are the host folders bound read-only into test rootfs views
// (Debian 12: /bin and /lib are links into /usr, bound as their targets).
var viewBins = []string{"/usr", "/lib", "/lib64", "/bin"}

// newRootfs makes an empty rootfs folder (0755), removed when t ends.
func newRootfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	r := filepath.Join(dir, "root")
	if err := os.Mkdir(r, 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

// hostMounts is the set of mount points of the test's own mount namespace.
func hostMounts(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	// Other tests (this package's in parallel, other packages', other
	// runs on the machine) add and remove their own namespace files and
	// temporary mounts meanwhile: only mount points this test could have
	// leaked count, which are all outside /run/netns and, under the
	// temporary directory, inside this test's own folders.
	top := strings.SplitN(t.Name(), "/", 2)[0]
	tmp := filepath.Clean(os.TempDir()) + "/"
	var targets []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) <= 4 {
			continue
		}
		target := f[4]
		if strings.HasPrefix(target, "/run/netns/") || strings.HasPrefix(target, "/var/run/netns/") ||
			(strings.HasPrefix(target, tmp) && !strings.HasPrefix(target, tmp+top)) {
			continue
		}
		targets = append(targets, target)
	}
	sort.Strings(targets)
	return strings.Join(targets, "\n")
}

// nsboxView is the nsbox spelling of a rootfs view with the host's binaries
// read-only, /dev, /proc (the PID namespace's) and a /tmp tmpfs.
func nsboxView(root string) []string {
	args := []string{"run", "--ipc", "--pid", "--rootfs", root}
	for _, b := range viewBins {
		args = append(args, "--ro-bind", b+":"+b)
	}
	return append(args, "--dev", "--tmpfs", "/tmp", "--")
}

// bwrapView is the same view through bubblewrap.
func bwrapView(root string) []string {
	args := []string{"--unshare-ipc", "--unshare-pid", "--bind", root, "/"}
	for _, b := range viewBins {
		args = append(args, "--ro-bind", b, b)
	}
	return append(args, "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--")
}

// mountView reduces findmnt's output to target, fstype and ro/rw, which
// both tools must agree on (bubblewrap adds nosuid/nodev to its binds and
// builds / on a tmpfs, so options beyond ro/rw and / itself differ).
func mountView(out string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		// Both cover /proc/irq and /proc/bus read-only; nsbox also
		// /proc/sys (bubblewrap skips it when access(W_OK) says EACCES);
		// nsbox's /dev/shm is a tmpfs (bubblewrap's a plain folder).
		if len(f) != 3 || f[0] == "/" || f[0] == "/proc/sys" || f[0] == "/dev/shm" {
			continue
		}
		ro := "rw"
		if strings.HasPrefix(f[2], "ro") {
			ro = "ro"
		}
		lines = append(lines, f[0]+" "+f[1]+" "+ro)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// devView reduces `ls -la /dev` to name, type, mode and link target, less
// bubblewrap's core link (nsbox shows no memory device).
func devView(out string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 9 || f[len(f)-1] == "." || f[len(f)-1] == ".." || strings.HasPrefix(l, "total") {
			continue
		}
		name, mode := f[len(f)-1], f[0]
		if strings.HasPrefix(mode, "l") {
			name = f[len(f)-3] + " -> " + f[len(f)-1]
		}
		if name == "core -> /proc/kcore" {
			continue
		}
		if name == "shm" {
			mode = "d" // nsbox's is a tmpfs (1777), bubblewrap's a plain folder
		}
		line := mode + " " + name
		if strings.HasPrefix(mode, "c") {
			line += " " + f[4] + f[5]
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// TestRunViewAgainstBwrap runs the same view through bubblewrap and nsbox
// and compares what the payload sees: the mount table (findmnt inside), the
// /dev listing, and that nothing else of the host is there.
func TestRunViewAgainstBwrap(t *testing.T) {
	testutil.RequirePriv(t)
	bwrap := testutil.RequireTool(t, "bwrap")
	bin := runBuildNsbox(t)
	before := hostMounts(t)

	for _, probe := range []struct {
		name   string
		cmd    []string
		reduce func(string) string
	}{
		{"findmnt", []string{"findmnt", "-rn", "-o", "TARGET,FSTYPE,OPTIONS"}, mountView},
		{"ls /dev", []string{"ls", "-la", "/dev"}, devView},
		{"ls /", []string{"ls", "-1", "/"}, strings.TrimSpace},
	} {
		t.Run(probe.name, func(t *testing.T) {
			r1, r2 := newRootfs(t), newRootfs(t)
			out, stderr, code := runNsbox(t, bin, nil, append(nsboxView(r1), probe.cmd...)...)
			if code != 0 {
				t.Fatalf("nsbox: exit %d, stderr %q", code, stderr)
			}
			c := exec.Command(bwrap, append(bwrapView(r2), probe.cmd...)...)
			bout, bstderr, bcode := runCaptured(t, c)
			if bcode != 0 {
				t.Fatalf("bwrap: exit %d, stderr %q", bcode, bstderr)
			}
			if got, want := probe.reduce(out), probe.reduce(bout); got != want || got == "" {
				t.Errorf("%s differs:\nnsbox:\n%s\nbwrap:\n%s", probe.name, got, want)
			}
		})
	}
	if after := hostMounts(t); after != before {
		t.Errorf("the host's mount table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestRunView checks each piece of the view from outside as well as inside.
func TestRunView(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	before := hostMounts(t)

	t.Run("host files outside the binds are unreachable", func(t *testing.T) {
		r := newRootfs(t)
		secret := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(secret, []byte("s3cret"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, stderr, code := runNsbox(t, bin, nil, append(nsboxView(r), "sh", "-c",
			"cat "+secret+" /etc/hostname 2>&1; ls -A / | tr '\\n' ' '")...)
		if code != 0 || strings.Contains(out, "s3cret") || !strings.Contains(out, "No such file") {
			t.Errorf("exit %d stdout %q stderr %q; want the host's files absent", code, out, stderr)
		}
		if got := strings.TrimSpace(out[strings.LastIndex(out, "\n")+1:]); got != "bin dev lib lib64 proc tmp usr" {
			t.Errorf("/ holds %q, want only the mount points of the view", got)
		}
	})

	t.Run("root seen from outside", func(t *testing.T) {
		r := newRootfs(t)
		if err := os.WriteFile(filepath.Join(r, "marker"), []byte("m"), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append(nsboxView(r), "sh", "-c", "echo ready; read x")
		cmd := exec.Command(bin, args...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close(); cmd.Wait() })
		buf := make([]byte, 6)
		if _, err := stdout.Read(buf); err != nil || string(buf) != "ready\n" {
			t.Fatalf("payload did not start: %q %v", buf, err)
		}
		// The payload is the init's child, the init nsbox's.
		initPid := childOf(t, cmd.Process.Pid)
		pid := childOf(t, initPid)
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/root/marker"); err != nil {
			t.Errorf("/proc/%d/root does not show the rootfs: %v", pid, err)
		}
		mi, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		var root, ro []string
		for _, l := range strings.Split(string(mi), "\n") {
			f := strings.Fields(l)
			if len(f) < 6 {
				continue
			}
			if f[4] == "/" {
				root = append(root, f[3])
			}
			if f[4] == "/usr" && strings.HasPrefix(f[5], "ro") {
				ro = append(ro, f[4])
			}
		}
		if len(root) != 1 || !strings.HasSuffix(root[0], "/root") || len(ro) != 1 {
			t.Errorf("mountinfo of the payload: / from %q, read-only /usr %q; want the rootfs and one ro /usr:\n%s", root, ro, mi)
		}
	})

	t.Run("binds, read-only binds and tmpfs", func(t *testing.T) {
		r := newRootfs(t)
		shared := t.TempDir()
		ro := t.TempDir()
		args := append(nsboxView(r)[:len(nsboxView(r))-1], "--bind", shared+":/data", "--ro-bind", ro+":/ro",
			"--tmpfs", "/scratch:size=1m,mode=0700", "--",
			"sh", "-c", `echo written > /data/f && ls -A /scratch | wc -l && echo x > /scratch/y && cat /scratch/y &&
stat -c %a /scratch && touch /ro/f 2>&1; touch /usr/nsbox-view-test 2>&1; findmnt -rn -o SIZE /scratch`)
		out, stderr, code := runNsbox(t, bin, nil, args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 6 || lines[0] != "0" || lines[1] != "x" || lines[2] != "700" ||
			!strings.Contains(lines[3], "Read-only file system") || !strings.Contains(lines[4], "Read-only file system") ||
			lines[5] != "1M" {
			t.Errorf("exit %d stdout %q stderr %q", code, out, stderr)
		}
		if b, err := os.ReadFile(filepath.Join(shared, "f")); err != nil || string(b) != "written\n" {
			t.Errorf("a file written through --bind is not on the host: %q %v", b, err)
		}
		if ents, _ := os.ReadDir(ro); len(ents) != 0 {
			t.Errorf("the read-only bind was written: %v", ents)
		}
		if ents, err := os.ReadDir(filepath.Join(r, "scratch")); err != nil || len(ents) != 0 {
			t.Errorf("the tmpfs left files in the rootfs: %v %v", ents, err)
		}
	})

	t.Run("machine-wide parts of /proc are read-only", func(t *testing.T) {
		// The payload first proves it is in a mount namespace of its own,
		// then writes back the value it read (no change even if it got
		// through): it must fail with EROFS.
		r := newRootfs(t)
		hostMnt, err := os.Readlink("/proc/self/ns/mnt")
		if err != nil {
			t.Fatal(err)
		}
		out, stderr, code := runNsbox(t, bin, nil, append(nsboxView(r), "sh", "-c",
			`[ "$(readlink /proc/self/ns/mnt)" != "`+hostMnt+`" ] || { echo not-sandboxed; exit 9; }
v=$(cat /proc/sys/vm/overcommit_memory); echo "$v" > /proc/sys/vm/overcommit_memory 2>&1 || true
findmnt -rn -o OPTIONS /proc/sys | cut -d, -f1`)...)
		if code != 0 || !strings.Contains(stderr, "Read-only file system") || out != "ro\n" {
			t.Errorf("exit %d stdout %q stderr %q; want EROFS and a read-only /proc/sys", code, out, stderr)
		}
	})

	t.Run("file binds create their mount point", func(t *testing.T) {
		r := newRootfs(t)
		src := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(src, []byte("file-bind"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, stderr, code := runNsbox(t, bin, nil, append(nsboxView(r)[:len(nsboxView(r))-1],
			"--ro-bind", src+":/a/b/c", "--", "sh", "-c", "cat /a/b/c; test -f /a/b/c && test -d /a/b && echo shapes-ok")...)
		if code != 0 || out != "file-bindshapes-ok\n" {
			t.Errorf("exit %d stdout %q stderr %q", code, out, stderr)
		}
		if fi, err := os.Stat(filepath.Join(r, "a", "b", "c")); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
			t.Errorf("the mount point in the rootfs: %v %v, want an empty file", fi, err)
		}
	})

	t.Run("read-only bind keeps locked flags", func(t *testing.T) {
		// In a mount namespace of the test's own, a nosuid,nodev,noexec
		// tmpfs; a read-only bind of it keeps those and adds ro, also
		// where they are locked (a new user namespace).
		unshare := testutil.RequireTool(t, "unshare")
		src := t.TempDir()
		for _, userns := range [][]string{nil, {"--user", "--map-root"}} {
			args := append([]string{"run"}, userns...)
			args = append(args, "--ro-bind", src+":/locked", "--", "findmnt", "-rn", "-o", "OPTIONS", "/locked")
			script := "mount -t tmpfs -o nosuid,nodev,noexec,size=64k nsbox-locked " + src + " && exec \"$@\""
			cmd := exec.Command(unshare, append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh", bin}, args...)...)
			out, stderr, code := runCaptured(t, cmd)
			opts := map[string]bool{}
			for _, o := range strings.Split(strings.TrimSpace(out), ",") {
				opts[o] = true
			}
			if code != 0 || !opts["ro"] || !opts["nosuid"] || !opts["nodev"] || !opts["noexec"] {
				t.Errorf("%v: exit %d options %q stderr %q; want ro with the source's nosuid,nodev,noexec", userns, code, out, stderr)
			}
		}
	})

	t.Run("symlinks never lead out of the root", func(t *testing.T) {
		r := newRootfs(t)
		if err := os.Mkdir(filepath.Join(r, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		name := "nsbox-view-" + testutil.UniqueName("s")
		for link, target := range map[string]string{"abs": "/etc", "rel": "../../../../../../etc"} {
			if err := os.Symlink(target, filepath.Join(r, link)); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { os.Remove("/etc/" + name + "a"); os.Remove("/etc/" + name + "b") })
		out, stderr, code := runNsbox(t, bin, nil, append(nsboxView(r)[:len(nsboxView(r))-1],
			"--tmpfs", "/abs/"+name+"a", "--tmpfs", "/rel/"+name+"b", "--", "true")...)
		if code != 0 {
			t.Fatalf("exit %d stdout %q stderr %q", code, out, stderr)
		}
		for _, n := range []string{name + "a", name + "b"} {
			if _, err := os.Lstat("/etc/" + n); err == nil {
				t.Errorf("a mount point was made on the host: /etc/%s", n)
			}
			if fi, err := os.Stat(filepath.Join(r, "etc", n)); err != nil || !fi.IsDir() {
				t.Errorf("the mount point is not in the rootfs's own /etc: %v", err)
			}
		}
	})

	t.Run("environment", func(t *testing.T) {
		args := []string{"--clearenv", "--setenv", "A=1", "--setenv", "B=two words", "--unsetenv", "A", "--setenv", "C=3"}
		out, stderr, code := runNsbox(t, bin, nil, append(append([]string{"run"}, args...), "--", "/usr/bin/env")...)
		if code != 0 || out != "B=two words\nC=3\n" {
			t.Errorf("exit %d env %q stderr %q", code, out, stderr)
		}
		bwrap := testutil.RequireTool(t, "bwrap")
		bout, _, _ := runCaptured(t, exec.Command(bwrap, "--dev-bind", "/", "/", "--clearenv", "--setenv", "A", "1",
			"--setenv", "B", "two words", "--unsetenv", "A", "--setenv", "C", "3", "/usr/bin/env"))
		// bubblewrap sets PWD after --clearenv (see shared/LAB.md).
		var bl []string
		for _, l := range strings.Split(bout, "\n") {
			if l != "" && !strings.HasPrefix(l, "PWD=") {
				bl = append(bl, l)
			}
		}
		if strings.Join(bl, "\n")+"\n" != out {
			t.Errorf("nsbox env %q, bwrap env %q", out, bout)
		}
		// Without --clearenv the caller's environment is kept, in order.
		out, _, code = runNsbox(t, bin, nil, "run", "--unsetenv", "PATH", "--setenv", "NSBOX_VIEW=1", "--", "/usr/bin/env")
		if code != 0 || strings.Contains("\n"+out, "\nPATH=") || !strings.HasSuffix(out, "NSBOX_VIEW=1\n") {
			t.Errorf("exit %d env %q", code, out)
		}
	})

	t.Run("chdir", func(t *testing.T) {
		r := newRootfs(t)
		out, _, code := runNsbox(t, bin, nil, append(nsboxView(r), "pwd")...)
		if code != 0 || out != "/\n" { // runNsbox starts in /, which is there
			t.Errorf("default dir: %q exit %d", out, code)
		}
		cmd := exec.Command(bin, append(nsboxView(r), "pwd")...)
		cmd.Dir = t.TempDir() // not inside the rootfs: "/"
		if out, _, code := runCaptured(t, cmd); code != 0 || out != "/\n" {
			t.Errorf("missing caller dir: %q exit %d", out, code)
		}
		cmd = exec.Command(bin, append(nsboxView(r), "pwd")...)
		cmd.Dir = "/usr/share"
		if out, _, code := runCaptured(t, cmd); code != 0 || out != "/usr/share\n" {
			t.Errorf("caller dir inside the view: %q exit %d", out, code)
		}
		out, _, code = runNsbox(t, bin, nil, "run", "--wd", "/usr/lib", "--", "pwd")
		if code != 0 || out != "/usr/lib\n" {
			t.Errorf("--wd: %q exit %d", out, code)
		}
		_, stderr, code := runNsbox(t, bin, nil, "run", "--chdir", "/nonexistent-nsbox", "--", "pwd")
		if code != 125 || !strings.Contains(stderr, "chdir /nonexistent-nsbox: no such file or directory") {
			t.Errorf("--chdir missing: exit %d %q", code, stderr)
		}
	})

	t.Run("ro-root without rootfs", func(t *testing.T) {
		dir := t.TempDir()
		out, stderr, code := runNsbox(t, bin, nil, "run", "--ro-root", "--dev", "--tmpfs", "/mnt", "--", "sh", "-c",
			"touch "+dir+"/x 2>&1; touch /mnt/y && echo tmp-ok; echo > /dev/null && echo null-ok")
		if code != 0 || !strings.Contains(out, "Read-only file system") || !strings.Contains(out, "tmp-ok") || !strings.Contains(out, "null-ok") {
			t.Errorf("exit %d stdout %q stderr %q", code, out, stderr)
		}
		if _, err := os.Stat(dir + "/x"); err == nil {
			t.Errorf("--ro-root let a write through")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		r := newRootfs(t)
		file := filepath.Join(r, "file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			args []string
			code int
			msg  string
		}{
			{[]string{"run", "--bind", "/nonexistent-nsbox-src", "--", "true"}, 125, "nsbox: run: --bind /nonexistent-nsbox-src: no such file or directory"},
			{[]string{"run", "--ro-bind", "/nonexistent-nsbox-src:/x", "--", "true"}, 125, "nsbox: run: --ro-bind /nonexistent-nsbox-src: no such file or directory"},
			{[]string{"run", "--rootfs", "relative/root", "--", "true"}, 125, "nsbox: run: --rootfs relative/root: not an absolute path"},
			{[]string{"run", "--rootfs", file, "--", "true"}, 125, "nsbox: run: --rootfs " + file + ": not a directory"},
			{[]string{"run", "--rootfs", r, "--bind", "/usr:/file", "--", "/usr/bin/true"}, 125, "nsbox: run: mount bind /usr on /file: not a directory"},
			{[]string{"run", "--ro-root", "--tmpfs", "/nonexistent-nsbox-dir", "--", "true"}, 125, "nsbox: run: mount point /nonexistent-nsbox-dir (for tmpfs on /nonexistent-nsbox-dir): read-only file system"},
			{[]string{"run", "--bind", "/usr:relative", "--", "true"}, 2, `nsbox: run: --bind "/usr:relative": destination "relative" is not an absolute path`},
			{[]string{"run", "--tmpfs", "/x:size=huge", "--", "true"}, 2, `nsbox: run: --tmpfs "/x:size=huge": size "huge"`},
			{[]string{"run", "--tmpfs", "/x:color=red", "--", "true"}, 2, `nsbox: run: --tmpfs "/x:color=red": unknown option "color"`},
			{[]string{"run", "--setenv", "NOVALUE", "--", "true"}, 2, `nsbox: run: --setenv "NOVALUE": want NAME=VALUE`},
			{[]string{"run", "--dev=false", "--", "true"}, 2, "nsbox: run: --dev false: takes no value"},
			{[]string{"run", "--uid", "4242", "--", "true"}, 2, "nsbox: run: --uid 4242: no user with that uid in /etc/passwd, so no group to take: give --gid too"},
		}
		for _, c := range cases {
			stdout, stderr, code := runNsbox(t, bin, nil, c.args...)
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if code != c.code || len(lines) != 1 || !strings.HasPrefix(lines[0], c.msg) || stdout != "" {
				t.Errorf("nsbox %q: exit %d, stderr %q; want exit %d and one line starting %q", c.args, code, stderr, c.code, c.msg)
			}
		}
		// Only the file and the /proc mount point (made before the
		// failing bind) are there.
		if ents, _ := os.ReadDir(r); len(ents) != 2 {
			t.Errorf("the rootfs changed: %v", ents)
		}
	})

	if after := hostMounts(t); after != before {
		t.Errorf("the host's mount table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestRunUserFromPasswd is issue 9's defect 3: --uid NAME takes the user's
// group, supplementary groups and HOME/USER/LOGNAME; before, --uid nobody
// ran with gid 0 and could read a 0640 root:root file.
func TestRunUserFromPasswd(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("root only"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(secret, 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"fast-path", "go-path"} {
		t.Run(mode, func(t *testing.T) {
			out, stderr, code := runNsbox(t, bin, nil, "run", "--uid", "nobody", "--", "sh", "-c",
				`id -u; id -g; id -G; echo "$HOME $USER $LOGNAME"; cat `+secret+` 2>&1; true`)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code != 0 || len(lines) != 5 || lines[0] != "65534" || lines[1] != "65534" || lines[2] != "65534" ||
				lines[3] != "/nonexistent nobody nobody" || !strings.Contains(lines[4], "Permission denied") {
				t.Errorf("--uid nobody: exit %d stdout %q stderr %q", code, out, stderr)
			}
			// A number that passwd knows is the same user; --setenv wins.
			out, _, code = runNsbox(t, bin, nil, "run", "--uid", "65534", "--setenv", "HOME=/h", "--", "sh", "-c", `id -g; echo $HOME $USER`)
			if code != 0 || out != "65534\n/h nobody\n" {
				t.Errorf("--uid 65534: exit %d stdout %q", code, out)
			}
			// --clearenv drops them too; --gid overrides the group.
			out, _, code = runNsbox(t, bin, nil, "run", "--uid", "nobody", "--gid", "0", "--clearenv", "--", "/usr/bin/env")
			if code != 0 || out != "" {
				t.Errorf("--clearenv: exit %d env %q", code, out)
			}
			out, _, code = runNsbox(t, bin, nil, "run", "--uid", "nobody", "--gid", "0", "--", "id", "-g")
			if code != 0 || out != "0\n" {
				t.Errorf("--gid 0: exit %d %q", code, out)
			}
		})
	}
}

// TestRunUnshareFlags checks unshare's spellings: the short flags make the
// same namespaces as the long ones, -r maps root in a user namespace.
func TestRunUnshareFlags(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	self := map[string]string{}
	for _, ns := range []string{"ipc", "mnt", "net", "pid", "uts", "user", "cgroup"} {
		l, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		self[ns] = l
	}
	probe := "for n in ipc mnt net pid uts user cgroup; do echo $n $(readlink /proc/self/ns/$n); done"
	for _, c := range []struct {
		flags []string
		fresh []string
	}{
		{[]string{"-i", "-m", "-n", "-u", "-C", "-f"}, []string{"ipc", "mnt", "net", "uts", "cgroup"}},
		{[]string{"-p", "-m", "--fork"}, []string{"pid", "mnt"}},
		{[]string{"-U", "-r"}, []string{"user"}},
		{[]string{"--map-root-user"}, []string{"user"}},
	} {
		out, stderr, code := runNsbox(t, bin, nil, append(append([]string{"run"}, c.flags...), "--", "sh", "-c", probe+"; id -u")...)
		if code != 0 {
			t.Errorf("run %v: exit %d stderr %q", c.flags, code, stderr)
			continue
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines[:len(lines)-1] {
			f := strings.Fields(l)
			fresh := false
			for _, n := range c.fresh {
				fresh = fresh || n == f[0]
			}
			if (f[1] != self[f[0]]) != fresh {
				t.Errorf("run %v: %s namespace %s (ours %s), want new: %v", c.flags, f[0], f[1], self[f[0]], fresh)
			}
		}
		if last := lines[len(lines)-1]; last != "0" {
			t.Errorf("run %v: uid %q, want 0", c.flags, last)
		}
	}
}

// childrenOf returns the pids of the children of ppid (from /proc/*/stat).
func childrenOf(ppid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		if f := strings.Fields(rest); len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// childOf returns the pid of a child of ppid.
func childOf(t *testing.T, ppid int) int {
	t.Helper()
	if c := childrenOf(ppid); len(c) > 0 {
		return c[0]
	}
	t.Fatalf("no child of %d", ppid)
	return 0
}

// stopSandbox ends a sandbox that a test started with nsbox run: first
// the sandbox (nsbox's children: the init, whose death ends its PID
// namespace and kills a payload without one, or the payload itself), then
// nsbox. Killing nsbox alone would leave the sandbox running: without
// --bridge, run does not tie it to nsbox's life.
func stopSandbox(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	for _, c := range childrenOf(cmd.Process.Pid) {
		syscall.Kill(c, syscall.SIGKILL)
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// nsInodes reads /proc/PID/ns/* as readlink shows them ("net:[4026...]").
func nsInodes(t *testing.T, pid int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range []string{"cgroup", "ipc", "mnt", "net", "pid", "user", "uts"} {
		l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = l
	}
	return out
}

// TestNamedSandboxes drives run --name, --status-fd and --pidfile, ps,
// enter and kill through the binary, each observed from outside: the
// namespaces by readlink /proc/PID/ns/*, the record by ps -j, the files of
// the sandbox by enter and by nsenter.
func TestNamedSandboxes(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	state := t.TempDir()
	t.Setenv("NSBOX_STATE_DIR", state)
	name := testutil.UniqueName("sbx")
	r := newRootfs(t)
	if err := os.WriteFile(filepath.Join(r, "marker"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(t.TempDir(), "pid")
	statusR, statusW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer statusR.Close()
	args := append([]string{"run", "--name", name, "--status-fd", "3", "--pidfile", pidfile, "--uts", "--hostname", name,
		"--net", "--setenv", "NSBOX_SBX=" + name}, nsboxView(r)[1:]...)
	args = append(args, "sleep", "60")
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{statusW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	statusW.Close()
	t.Cleanup(func() { stopSandbox(cmd) })
	dec := json.NewDecoder(statusR)
	var first map[string]any
	if err := dec.Decode(&first); err != nil {
		t.Fatalf("first status line: %v", err)
	}
	pid := int(first["child-pid"].(float64))
	if b, err := os.ReadFile(pidfile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		t.Errorf("pidfile %q %v, want %d", b, err, pid)
	}
	ns := nsInodes(t, pid)
	self := nsInodes(t, os.Getpid())
	for _, k := range []string{"ipc", "mnt", "net", "pid", "uts"} {
		v, ok := first[k+"-namespace"].(float64)
		if !ok || fmt.Sprintf("%s:[%d]", k, int64(v)) != ns[k] || ns[k] == self[k] {
			t.Errorf("status %s-namespace %v, readlink %s (ours %s)", k, first[k+"-namespace"], ns[k], self[k])
		}
	}
	if _, ok := first["user-namespace"]; ok {
		t.Errorf("status names a user namespace that is not new: %v", first)
	}

	// ps -j against readlink and ps.
	out, stderr, code := runNsbox(t, bin, nil, "-j", "ps")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("ps -j: exit %d %q %q", code, out, stderr)
	}
	var mine map[string]any
	for _, e := range list {
		if e["name"] == name {
			mine = e
		}
	}
	if mine == nil || int(mine["pid"].(float64)) != pid {
		t.Fatalf("ps -j does not list %s as %d: %s", name, pid, out)
	}
	for _, k := range []string{"name", "pid", "started", "namespaces", "addresses", "command"} {
		if _, ok := mine[k]; !ok {
			t.Errorf("ps -j entry has no %q: %v", k, mine)
		}
	}
	for k, v := range mine["namespaces"].(map[string]any) {
		if fmt.Sprintf("%s:[%d]", k, int64(v.(float64))) != ns[k] {
			t.Errorf("ps -j %s namespace %v, readlink %s", k, v, ns[k])
		}
	}
	if psOut := testutil.Cmd(t, "ps", "-o", "pid=,comm=", "-p", strconv.Itoa(pid)); !strings.Contains(psOut, "sleep") {
		t.Errorf("ps -p %d: %q, want the sleep", pid, psOut)
	}
	if text, _, _ := runNsbox(t, bin, nil, "ps"); !strings.Contains(text, name) || !strings.Contains(text, "ipc,mnt,net,pid,uts") {
		t.Errorf("ps: %q", text)
	}

	// A second sandbox of the same name is refused, nothing recorded.
	_, stderr, code = runNsbox(t, bin, nil, "run", "--name", name, "--", "true")
	if code != 125 || !strings.Contains(stderr, "already running as pid "+strconv.Itoa(pid)) {
		t.Errorf("same name twice: exit %d %q", code, stderr)
	}

	// enter: the same namespaces, the sandbox's root and files, forked
	// inside its PID namespace, its environment with --env; nsenter agrees.
	// Through the C fast path (enter TARGET -- CMD) and through Go.
	for _, mode := range []string{"fast-path", "go-path"} {
		t.Run(mode, func(t *testing.T) {
			probe := "for n in ipc mnt net pid uts; do readlink /proc/self/ns/$n; done; hostname; cat /marker; echo; cat /proc/1/comm; echo ${NSBOX_SBX:-none}"
			out, stderr, code := runNsbox(t, bin, nil, "enter", name, "--", "sh", "-c", probe)
			want := strings.Join([]string{ns["ipc"], ns["mnt"], ns["net"], ns["pid"], ns["uts"], name, "inside", "nsbox-init", "none"}, "\n") + "\n"
			if code != 0 || out != want {
				t.Errorf("enter: exit %d stdout %q stderr %q, want %q", code, out, stderr, want)
			}
			nsenter := testutil.RequireTool(t, "nsenter")
			nout, nerr, ncode := runCaptured(t, exec.Command(nsenter, "--all", "-t", strconv.Itoa(pid), "sh", "-c", probe))
			if ncode != 0 || nout != want {
				t.Errorf("nsenter --all: exit %d %q %q, want %q", ncode, nout, nerr, want)
			}
			out, _, code = runNsbox(t, bin, nil, "enter", strconv.Itoa(pid), "--net", "--env", "--", "sh", "-c", "readlink /proc/self/ns/net /proc/self/ns/mnt; echo $NSBOX_SBX")
			if code != 0 || out != ns["net"]+"\n"+self["mnt"]+"\n"+name+"\n" {
				t.Errorf("enter PID --net --env: exit %d %q", code, out)
			}
			if _, _, code := runNsbox(t, bin, nil, "enter", name, "--", "sh", "-c", "exit 7"); code != 7 {
				t.Errorf("enter exit status %d, want 7", code)
			}
			_, stderr, code = runNsbox(t, bin, nil, "enter", name, "--", "nsbox-no-such-cmd")
			if code != 127 || stderr != "nsbox: run: nsbox-no-such-cmd: command not found (no such file or directory)\n" {
				t.Errorf("enter of a missing command: exit %d %q", code, stderr)
			}
		})
	}

	// kill: the payload ends by SIGTERM, the last status line says so, the
	// record, the pid file and ps's entry are gone.
	if _, stderr, code = runNsbox(t, bin, nil, "kill", name, "TERM"); code != 0 {
		t.Fatalf("kill: exit %d %q", code, stderr)
	}
	var last map[string]any
	if err := dec.Decode(&last); err != nil || last["exit-code"] != float64(143) {
		t.Errorf("last status line %v %v, want exit-code 143", last, err)
	}
	cmd.Wait()
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("state left behind: %v", ents)
	}
	if _, err := os.Stat(pidfile); err == nil {
		t.Errorf("pidfile left behind")
	}
	if out, _, _ := runNsbox(t, bin, nil, "-j", "ps"); out != "[]\n" {
		t.Errorf("ps -j after the end: %q, want []", out)
	}
}

// TestNamedSandboxStale: after a SIGKILL of nsbox whose sandbox then ends,
// ps no longer lists it and cleans its record; enter and kill refuse.
func TestNamedSandboxStale(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	state := t.TempDir()
	t.Setenv("NSBOX_STATE_DIR", state)
	name := testutil.UniqueName("stl")
	pidfile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command(bin, "run", "--name", name, "--pidfile", pidfile, "--", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopSandbox(cmd) })
	var pid int
	for i := 0; i < 200 && pid == 0; i++ {
		if b, err := os.ReadFile(pidfile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if pid == 0 {
		t.Fatal("no pid file")
	}
	init := childOf(t, cmd.Process.Pid)
	cmd.Process.Kill() // nsbox dies: the record stays
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(state, name+".json")); err != nil {
		t.Fatalf("record gone with nsbox: %v", err)
	}
	if out, _, _ := runNsbox(t, bin, nil, "-j", "ps"); !strings.Contains(out, name) {
		t.Errorf("the sandbox still runs but ps -j does not list it: %q", out)
	}
	syscall.Kill(init, syscall.SIGKILL) // the sandbox ends (its init, then the PID namespace)
	for i := 0; i < 200; i++ {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, _, code := runNsbox(t, bin, nil, "-j", "ps"); code != 0 || out != "[]\n" {
		t.Errorf("ps -j lists an ended sandbox: %q", out)
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("ps did not clean the stale record: %v", ents)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"enter", name, "--", "true"}, "nsbox: enter " + name + ": sandbox " + name + ": no such sandbox"},
		{[]string{"kill", name}, "nsbox: kill " + name + ": sandbox " + name + ": no such sandbox"},
		{[]string{"enter", strconv.Itoa(pid), "--", "true"}, "nsbox: enter " + strconv.Itoa(pid) + ": pid " + strconv.Itoa(pid) + ": no such process"},
		{[]string{"run", "--name", "a/b", "--", "true"}, "nsbox: run: --name: sandbox name \"a/b\""},
		{[]string{"run", "--name", "..", "--", "true"}, "nsbox: run: --name: sandbox name \"..\""},
		{[]string{"run", "--name", strings.Repeat("n", 65), "--", "true"}, "nsbox: run: --name: sandbox name"},
	} {
		_, stderr, code := runNsbox(t, bin, nil, c.args...)
		want := 1
		if c.args[0] == "run" {
			want = 125
		}
		if code != want || !strings.HasPrefix(stderr, c.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("nsbox %q: exit %d %q, want %d and %q", c.args, code, stderr, want, c.msg)
		}
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("bad input left state: %v", ents)
	}
}

// TestEnterFastPathTaken: enter TARGET -- CMD runs before the Go runtime
// starts (GODEBUG=inittrace=1 prints nothing), flags go to Go (it does).
func TestEnterFastPathTaken(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	sb := exec.Command(bin, "run", "--uts", "--pidfile", pidfile, "--", "sleep", "60")
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopSandbox(sb) })
	var pid string
	for i := 0; i < 300 && pid == ""; i++ {
		if b, err := os.ReadFile(pidfile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid = strings.TrimSpace(string(b))
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if pid == "" {
		t.Fatal("no sandbox")
	}
	for _, c := range []struct {
		args []string
		fast bool
	}{
		{[]string{"enter", pid, "--", "true"}, true},
		{[]string{"enter", pid, "true"}, true},
		{[]string{"enter", pid, "--uts", "--", "true"}, false},
		{[]string{"enter", pid}, false}, // $SHELL: Go
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1", "SHELL=/bin/true")
		_, stderr, code := runCaptured(t, cmd)
		if code != 0 || strings.Contains(stderr, "init runtime") == c.fast {
			t.Errorf("nsbox %q: exit %d, Go started: %v, want fast path %v", c.args, code, strings.Contains(stderr, "init runtime"), c.fast)
		}
	}
}

// TestNamedSandboxNetwork: with --bridge the status stream and ps -j carry
// the interface and the address, the ones ip shows inside the sandbox.
func TestNamedSandboxNetwork(t *testing.T) {
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "ip")
	bin := runBuildNsbox(t)
	t.Setenv("NSBOX_STATE_DIR", t.TempDir())
	ns := netLab(t)
	name := testutil.UniqueName("net")
	statusR, statusW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer statusR.Close()
	cmd := exec.Command(bin, "-n", ns, "run", "--name", name, "--status-fd", "3", "--net", "--bridge", "br0",
		"--addr", "10.78.0.9/24", "--ifname", "eth7", "--", "sleep", "60")
	cmd.ExtraFiles = []*os.File{statusW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	statusW.Close()
	t.Cleanup(func() { stopSandbox(cmd) })
	dec := json.NewDecoder(statusR)
	var first map[string]any
	if err := dec.Decode(&first); err != nil {
		t.Fatalf("status: %v", err)
	}
	if first["interface"] != "eth7" || fmt.Sprint(first["addresses"]) != "[10.78.0.9/24]" {
		t.Errorf("status line %v, want interface eth7 and addresses [10.78.0.9/24]", first)
	}
	pid := int(first["child-pid"].(float64))
	inside := testutil.Cmd(t, "nsenter", "--net=/proc/"+strconv.Itoa(pid)+"/ns/net", "ip", "-br", "-4", "addr", "show", "dev", "eth7")
	if !strings.Contains(inside, "10.78.0.9/24") {
		t.Errorf("ip inside: %q", inside)
	}
	out, _, code := runNsbox(t, bin, nil, "-j", "ps")
	var list []struct {
		Name      string   `json:"name"`
		Addresses []string `json:"addresses"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Name != name ||
		fmt.Sprint(list[0].Addresses) != "[10.78.0.9/24]" {
		t.Errorf("ps -j: %q", out)
	}
	if _, stderr, code := runNsbox(t, bin, nil, "kill", name, "KILL"); code != 0 {
		t.Fatalf("kill: %d %q", code, stderr)
	}
	var last map[string]any
	if err := dec.Decode(&last); err != nil || last["exit-code"] != float64(137) {
		t.Errorf("last status %v %v, want exit-code 137", last, err)
	}
	cmd.Wait()
	waitNoSandboxLinks(t, ns)
}

// TestRunViewRootless: the same view built by an ordinary user in a user
// namespace (uid 65534 mapped to root), as bubblewrap does unprivileged;
// enter --uid/--gid of a named sandbox drops to the ids asked for.
func TestRunViewRootless(t *testing.T) {
	testutil.RequirePriv(t)
	bin := runBuildNsbox(t)
	r := newRootfs(t)
	if err := os.Chown(r, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(r), filepath.Dir(filepath.Dir(r))} {
		if err := os.Chmod(d, 0o755); err != nil { // t.TempDir's folders are 0700
			t.Fatal(err)
		}
	}
	args := append([]string{"run", "--user", "--map-root"}, nsboxView(r)[1:]...)
	out, stderr, code := runNsbox(t, bin, &syscall.Credential{Uid: 65534, Gid: 65534}, append(args, "sh", "-c",
		"id -u; ls /dev | tr '\\n' ' '; echo; touch /usr/nsbox-x 2>&1; touch /tmp/y && echo tmp-ok")...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || lines[0] != "0" ||
		strings.TrimSpace(lines[1]) != "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero" ||
		!strings.Contains(lines[2], "Read-only file system") || lines[3] != "tmp-ok" {
		t.Errorf("rootless view: exit %d stdout %q stderr %q", code, out, stderr)
	}

	t.Setenv("NSBOX_STATE_DIR", t.TempDir())
	name := testutil.UniqueName("uid")
	pidfile := filepath.Join(t.TempDir(), "pid")
	sb := exec.Command(bin, "run", "--name", name, "--pidfile", pidfile, "--", "sleep", "60")
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopSandbox(sb) })
	for i := 0; i < 300; i++ {
		if b, err := os.ReadFile(pidfile); err == nil && strings.HasSuffix(string(b), "\n") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	out, stderr, code = runNsbox(t, bin, nil, "enter", name, "--uid", "nobody", "--gid", "65534", "--", "sh", "-c", "id -u; id -g")
	if code != 0 || out != "65534\n65534\n" {
		t.Errorf("enter --uid nobody --gid 65534: exit %d %q %q", code, out, stderr)
	}
}
