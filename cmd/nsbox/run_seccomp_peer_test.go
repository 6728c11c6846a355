package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestRunSeccompMatchesRunc writes two profiles in Docker's JSON format and
// runs the same busybox command under nsbox run --seccomp FILE and under
// runc (podman's runtime) with a minimal bundle: both must print the same,
// and what they print must be the profile's documented effect.
func TestRunSeccompMatchesRunc(t *testing.T) {
	testutil.RequirePriv(t)
	runc := testutil.RequireTool(t, "runc")
	busybox := testutil.RequireTool(t, "busybox")
	bin := runBuildNsbox(t)
	info, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	// An allow list of every syscall but mkdir and mkdirat, default EPERM.
	var allow []string
	for name := range info.SyscallNames {
		if name != "mkdir" && name != "mkdirat" {
			allow = append(allow, name)
		}
	}
	sort.Strings(allow)
	archName := map[string]string{"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}[info.Name]
	profiles := []struct {
		name, want string
		profile    map[string]any
	}{
		{"allow-list", "mkdir: can't create directory 'd': Operation not permitted\nmkdir=1\n", map[string]any{
			"defaultAction": "SCMP_ACT_ERRNO",
			"architectures": []string{archName},
			"syscalls":      []map[string]any{{"names": allow, "action": "SCMP_ACT_ALLOW"}},
		}},
		{"errno-ret", "mkdir: can't create directory 'd': Disk quota exceeded\nmkdir=1\n", map[string]any{
			"defaultAction": "SCMP_ACT_ALLOW",
			"syscalls": []map[string]any{{"names": []string{"mkdir", "mkdirat"}, "action": "SCMP_ACT_ERRNO",
				"errnoRet": 122, "comment": "EDQUOT"}},
		}},
	}
	script := "cd /work && busybox mkdir d 2>&1; echo mkdir=$?"
	for _, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			dir := t.TempDir()
			data, err := json.Marshal(p.profile)
			if err != nil {
				t.Fatal(err)
			}
			prof := filepath.Join(dir, "profile.json")
			if err := os.WriteFile(prof, data, 0o644); err != nil {
				t.Fatal(err)
			}
			work := filepath.Join(dir, "work")
			if err := os.Mkdir(work, 0o755); err != nil {
				t.Fatal(err)
			}
			out, stderr, code := runNsbox(t, bin, nil, "run", "--seccomp", prof, "--bind", work+":/work", "--",
				busybox, "sh", "-c", script)
			if code != 0 {
				t.Fatalf("nsbox: exit %d: %s", code, stderr)
			}
			peer := runcRun(t, runc, busybox, p.profile, script)
			if out != peer {
				t.Errorf("nsbox printed %q, runc %q", out, peer)
			}
			if out != p.want {
				t.Errorf("nsbox printed %q; the profile says %q", out, p.want)
			}
		})
	}
}

// TestRunSeccompPodmanProfile runs podman's own default profile
// (containers-common's seccomp.json, with Docker's conditional rules) and
// checks it against what the profile documents: chroot is allowed only with
// CAP_SYS_CHROOT (an "includes" rule) and refused with EPERM without it (an
// "excludes" rule), and ordinary commands run. (runc is no peer here: it
// ignores the includes/excludes keys, which podman evaluates before it
// hands the profile to runc.)
func TestRunSeccompPodmanProfile(t *testing.T) {
	testutil.RequirePriv(t)
	busybox := testutil.RequireTool(t, "busybox")
	const profile = "/usr/share/containers/seccomp.json"
	if _, err := os.Stat(profile); err != nil {
		testutil.RequireTool(t, "podman") // CI installs podman, which brings the profile
		t.Skipf("%s: %v", profile, err)
	}
	bin := runBuildNsbox(t)
	script := busybox + " chroot / " + busybox + " true 2>&1; echo chroot=$?; " + busybox + " echo hello"
	base := []string{"run", "--seccomp", profile, "--cap-drop", "ALL", "--cap-add", "audit_write", "--cap-add", "kill",
		"--cap-add", "net_bind_service"}
	for _, c := range []struct {
		extra []string
		want  string
	}{
		{nil, "chroot: can't change root directory to '/': Operation not permitted\nchroot=1\nhello\n"},
		{[]string{"--cap-add", "sys_chroot"}, "chroot=0\nhello\n"},
	} {
		args := append(append(append([]string(nil), base...), c.extra...), "--", busybox, "sh", "-c", script)
		out, stderr, code := runNsbox(t, bin, nil, args...)
		if code != 0 || out != c.want {
			t.Errorf("%v: exit %d, printed %q (%s); the profile says %q", c.extra, code, out, stderr, c.want)
		}
	}
}

// runcRun runs script with busybox sh in a minimal runc bundle under the
// seccomp profile and returns its output; the container and its state are
// removed.
func runcRun(t *testing.T, runc, busybox string, profile map[string]any, script string) string {
	t.Helper()
	dir := t.TempDir()
	bundle, state := filepath.Join(dir, "bundle"), filepath.Join(dir, "state")
	rootBin := filepath.Join(bundle, "rootfs", "bin")
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs", "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(rootBin, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootBin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"sh"} {
		if err := os.Symlink("busybox", filepath.Join(rootBin, l)); err != nil {
			t.Fatal(err)
		}
	}
	spec := exec.Command(runc, "spec", "--bundle", bundle)
	if out, err := spec.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	cfgPath := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/sh", "-c", strings.ReplaceAll(script, "busybox ", "/bin/busybox ")}
	proc["env"] = []string{"PATH=/bin"}
	cfg["root"].(map[string]any)["readonly"] = false
	cfg["linux"].(map[string]any)["seccomp"] = profile
	if raw, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	id := testutil.UniqueName("nsbrc")
	t.Cleanup(func() {
		if out, err := exec.Command(runc, "--root", state, "delete", "-f", id).CombinedOutput(); err != nil &&
			!strings.Contains(string(out), "does not exist") {
			t.Errorf("runc delete: %v: %s", err, out)
		}
	})
	out, err := testutil.CmdErr(runc, "--root", state, "run", "--bundle", bundle, id)
	if err != nil {
		t.Fatalf("runc run: %v (%s)", err, out)
	}
	return fmt.Sprint(out)
}
