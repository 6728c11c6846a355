package main

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/nsclone"
)

func TestParseRunArgsDefaults(t *testing.T) {
	cases := []struct {
		args                                        []string
		ipc, pid, mount, net, uts, user, proc, init bool
		cmd                                         string
	}{
		{args: nil, ipc: true, pid: true, mount: true, proc: true, init: true},
		{args: []string{"--", "sh", "-c", "x"}, ipc: true, pid: true, mount: true, proc: true, init: true, cmd: "sh -c x"},
		{args: []string{"--ipc", "--pid", "--mount", "--no-init", "--uid", "nobody", "--gid", "nogroup", "--", "/bin/bash"},
			ipc: true, pid: true, mount: true, proc: true, cmd: "/bin/bash"},
		{args: []string{"--pid", "--mount", "--no-mount-proc", "true"}, pid: true, mount: true, init: true, cmd: "true"},
		{args: []string{"--net"}, net: true},
		{args: []string{"--uts", "--hostname", "h"}, uts: true},
		// --hostname implies --uts, on top of the default set.
		{args: []string{"--hostname", "h"}, ipc: true, pid: true, mount: true, uts: true, proc: true, init: true},
		{args: []string{"--pid", "--mount-proc"}, pid: true, mount: true, proc: true, init: true},
		{args: []string{"--user", "--map-root", "id"}, user: true, cmd: "id"},
		{args: []string{"--pid", "--init", "sh", "--not-a-flag-of-run"}, pid: true, init: true, cmd: "sh --not-a-flag-of-run"},
	}
	for _, c := range cases {
		o, err := parseRunArgs(c.args)
		if err != nil {
			t.Errorf("parseRunArgs(%q): %v", c.args, err)
			continue
		}
		got := []bool{o.ipc, o.pid, o.mount, o.net, o.uts, o.user, o.mountProc, o.init}
		want := []bool{c.ipc, c.pid, c.mount, c.net, c.uts, c.user, c.proc, c.init}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("parseRunArgs(%q): ipc,pid,mount,net,uts,user,proc,init = %v, want %v", c.args, got, want)
				break
			}
		}
		if strings.Join(o.cmd, " ") != c.cmd {
			t.Errorf("parseRunArgs(%q): cmd %q, want %q", c.args, o.cmd, c.cmd)
		}
	}
}

func TestParseRunArgsBad(t *testing.T) {
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"--uid"}, "flag needs an argument"},
		{[]string{"--uid", "4294967296"}, "out of range"},
		{[]string{"--uid", "4294967295"}, "out of range"},
		{[]string{"--gid", "99999999999999999999"}, "out of range"},
		{[]string{"--uid", "12ab"}, "not a number or a name"},
		{[]string{"--hostname", strings.Repeat("x", 65)}, "more than 64"},
		{[]string{"--propagation", "rprivate"}, `--propagation "rprivate"`},
		{[]string{"--propagation", "slave", "--ipc"}, "--propagation needs --mount"},
		{[]string{"--ipc", "--mount", "--mount-proc"}, "--mount-proc needs --pid"},
		{[]string{"--mount-proc", "--no-mount-proc", "--pid"}, "exclude each other"},
		{[]string{"--init", "--no-init"}, "exclude each other"},
		{[]string{"--map-root"}, "--map-root needs --user"},
		{[]string{"--net", "--netns", "x"}, "exclude each other"},
		{[]string{"--netns", ".."}, "not a namespace name"},
		{[]string{"--bridge", "br0"}, "--bridge needs --net"},
		{[]string{"--dhcp"}, "--dhcp needs --bridge"},
		{[]string{"--addr", "10.0.0.2/24"}, "--addr needs --bridge"},
		{[]string{"--net", "--bridge", "br0"}, "exactly one of --dhcp and --addr"},
		{[]string{"--net", "--bridge", "br0", "--dhcp", "--addr", "10.0.0.2/24"}, "exactly one of --dhcp and --addr"},
		{[]string{"--net", "--bridge", "br0", "--addr", "10.0.0.2"}, "prefix length"},
		{[]string{"--net", "--bridge", "br0", "--addr", "10.0.0.300/24"}, "not a CIDR"},
		{[]string{"--net", "--bridge", "br0", "--dhcp", "--gateway", "10.0.0.1"}, "--gateway needs --addr"},
		{[]string{"--net", "--bridge", "br0", "--addr", "10.0.0.2/24", "--gateway", "x"}, "not an IP address"},
		{[]string{"--net", "--bridge", "a-very-long-bridge-name", "--dhcp"}, "not an interface name"},
		{[]string{"--net", "--bridge", "br0", "--dhcp", "--ifname", "a/b"}, "not an interface name"},
		{[]string{"--net", "--bridge", "br0", "--dhcp", "--ifname", "eth%d"}, "not an interface name (contains '%')"},
		{[]string{"--net", "--bridge", "br\n0", "--dhcp"}, "not an interface name (contains a control character"},
		{[]string{"--netns", "a\nb"}, "not a namespace name, path or pid (contains a control character"},
		{[]string{"--netns", "a\xffb"}, "not a namespace name, path or pid (not valid UTF-8)"},
		{[]string{"--net", "--bridge", "br0", "--addr", "10.0.0.2/0"}, "prefix length of 0"},
		{[]string{"--net", "--bridge", "br0", "--addr", "10.0.0.255/24"}, "broadcast address"},
		{[]string{"--net", "--bridge", "br0", "--addr", "127.0.0.2/8"}, "loopback"},
		{[]string{"--net", "--bridge", "br0", "--addr", "224.0.0.2/24"}, "multicast"},
		{[]string{"--net", "--bridge", "br0", "--addr", "0.0.0.2/24"}, "0.0.0.0/8"},
	}
	for _, c := range cases {
		_, err := parseRunArgs(c.args)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("parseRunArgs(%q) = %v, want a usage error", c.args, err)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "run: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("parseRunArgs(%q) = %q, want one line starting with run: and containing %q", c.args, err, c.msg)
		}
	}
}

func TestParseID(t *testing.T) {
	for s, want := range map[string]uint32{"0": 0, "65534": 65534, "4294967294": 4294967294} {
		if got, err := parseID(s); err != nil || got != want {
			t.Errorf("parseID(%q) = %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "-1", "+1", "4294967295", "1e3", "0x10"} {
		if _, err := parseID(s); err == nil {
			t.Errorf("parseID(%q) succeeded", s)
		}
	}
	dir := t.TempDir()
	if err := os.Mkdir(dir+"/etc", 0o755); err != nil {
		t.Fatal(err)
	}
	passwd := dir + "/etc/passwd"
	if err := writeFile(passwd, "root:x:0:0:root:/root:/bin/bash\n\nnobody:x:65534:65534:nobody:/:/bin/false\nbad:x:notanumber:1::/:\n"); err != nil {
		t.Fatal(err)
	}
	if id, err := lookupID(dir, "nobody", "passwd", "--uid", "user"); err != nil || id != 65534 {
		t.Errorf("lookupID(nobody) = %d, %v", id, err)
	}
	if id, err := lookupID(dir, "42", "passwd", "--uid", "user"); err != nil || id != 42 {
		t.Errorf("lookupID(42) = %d, %v", id, err)
	}
	for _, name := range []string{"ghost", "bad", "no:colon"} {
		if _, err := lookupID(dir, name, "passwd", "--uid", "user"); err == nil {
			t.Errorf("lookupID(%q) succeeded", name)
		}
	}
}

// FuzzParseRunArgs feeds newline-separated argument lists to the parser: it
// must never panic, and what it accepts must be consistent.
func FuzzParseRunArgs(f *testing.F) {
	for _, s := range []string{
		"--ipc\n--pid\n--mount\n--no-init\n--uid\nnobody\n--gid\nnogroup\n--\n/bin/bash",
		"--net\n--bridge\nbr0\n--addr\n10.0.0.2/24\n--gateway\n10.0.0.1",
		"--hostname\nbox\n--user\n--map-root\nid",
		"--propagation=slave\n--mount\n--mount-proc\n--pid",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var args []string
		if s != "" {
			args = strings.Split(s, "\n")
		}
		o, err := parseRunArgs(args)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("parseRunArgs(%q): %v is not a one-line usage error", args, err)
			}
			return
		}
		if o.help {
			return
		}
		switch {
		case !(o.ipc || o.pid || o.mount || o.net || o.uts || o.user || o.cgroup):
			t.Fatalf("%q: no namespace", args)
		case o.mountProc && !(o.pid && o.mount):
			t.Fatalf("%q: /proc without pid and mount", args)
		case o.mountProc && o.noMountProc, o.init && o.noInit:
			t.Fatalf("%q: contradictory flags accepted", args)
		case o.hostname != "" && (!o.uts || len(o.hostname) > 64):
			t.Fatalf("%q: bad hostname accepted", args)
		case o.mapRoot && !o.user, o.bridge != "" && !o.net, o.netns != "" && o.net:
			t.Fatalf("%q: inconsistent flags accepted", args)
		}
		again := *o
		if err := again.check(); err != nil {
			t.Fatalf("%q: check is not idempotent: %v", args, err)
		}
	})
}

func TestSpawnErrorCodes(t *testing.T) {
	cases := []struct {
		err  error
		code int
		msg  string
	}{
		{&nsclone.SetupError{Stage: nsclone.StageExec, Object: "/x", Err: unix.ENOENT}, 127, "run: /x: command not found"},
		{&nsclone.SetupError{Stage: nsclone.StageExec, Object: "/x", Err: unix.EACCES}, 126, "run: /x: permission denied"},
		{&nsclone.SetupError{Stage: nsclone.StageExec, Object: "/x", Err: unix.ENOEXEC}, 126, "run: /x: exec format error"},
		{&nsclone.SetupError{Stage: nsclone.StageExec, Object: "/x", Err: unix.E2BIG}, 125, "run: /x: argument list too long"},
		{&nsclone.SetupError{Stage: nsclone.StageClone, Object: "pid", Err: unix.EPERM}, 125, "user namespaces are disabled"},
		{&nsclone.SetupError{Stage: nsclone.StageClone, Object: "ipc", Err: unix.ENOSPC}, 125, "namespace limit reached, see /proc/sys/user/max_*_namespaces"},
		{&nsclone.SetupError{Stage: nsclone.StageMountProc, Err: unix.EPERM}, 125, "mount /proc: operation not permitted"},
		{errors.New("other"), 125, "run: other"},
	}
	for _, c := range cases {
		err := spawnError("run", runCloneDenied, c.err)
		if exitCodeOf(err) != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("spawnError(%v) = %q exit %d, want %d and %q", c.err, err, exitCodeOf(err), c.code, c.msg)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("spawnError(%v) does not wrap the cause", c.err)
		}
	}
}
