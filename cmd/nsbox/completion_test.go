package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestCompletionScripts: the bash and zsh scripts parse (bash -n, zsh -n)
// and, loaded into a real bash, complete from the binary: commands,
// subcommands, synopsis keywords, namespaces of /run/netns and the links
// of the namespace that -n names (made here with ip).
func TestCompletionScripts(t *testing.T) {
	bash := testutil.RequireTool(t, "bash")
	zsh := testutil.RequireTool(t, "zsh")
	bin := cliBinary(t)
	dir := t.TempDir()
	for _, sh := range []struct{ name, tool string }{{"bash", bash}, {"zsh", zsh}} {
		out, errOut, code := cli(t, "completion", sh.name)
		if code != 0 || errOut != "" || out == "" {
			t.Fatalf("nsbox completion %s: exit %d, %q", sh.name, code, errOut)
		}
		file := filepath.Join(dir, "nsbox."+sh.name)
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(sh.tool, "-n", file).CombinedOutput(); err != nil {
			t.Errorf("%s -n on nsbox completion %s: %v\n%s", sh.name, sh.name, err, out)
		}
	}
	if _, _, code := cli(t, "completion", "fish"); code != 2 {
		t.Errorf("nsbox completion fish: exit %d, want 2", code)
	}

	ns := testutil.NewNetns(t)
	veth := testutil.UniqueName("cmpv")
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", veth, "type", "veth", "peer", "name", veth+"p")
	// complete WORDS... loads the bash script, sets COMP_WORDS and
	// COMP_CWORD as bash does when TAB is pressed after the last word, and
	// prints COMPREPLY.
	complete := func(words ...string) []string {
		t.Helper()
		script := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _nsbox; printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, append([]string{"-c", script, "complete", filepath.Join(dir, "nsbox.bash"), bin}, words...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bash completion of %q: %v", words, err)
		}
		if testing.Verbose() {
			t.Logf("completing %q: %q", words, out)
		}
		return strings.Fields(string(out))
	}
	for _, tc := range []struct {
		words []string
		want  []string // each must be offered
		not   []string // none may be offered
	}{
		{[]string{"li"}, []string{"link"}, []string{"addr"}},
		{[]string{""}, []string{"run", "netns", "link", "addr", "route", "bridge", "dhcp", "completion", "help"}, []string{"__complete"}},
		{[]string{"netns", ""}, []string{"add", "attach", "del", "exec", "pids"}, nil},
		{[]string{"netns", "exec", ns[:6]}, []string{ns}, nil},
		{[]string{"-n", ns[:6]}, []string{ns}, nil},
		{[]string{"-n", ns, "link", "set", ""}, []string{veth, veth + "p", "lo"}, nil},
		{[]string{"-n", ns, "link", "set", veth, ""}, []string{"up", "down", "mtu", "master", "netns"}, nil},
		{[]string{"-n", ns, "addr", "add", "10.0.0.1/24", "dev", ""}, []string{veth}, nil},
		{[]string{"run", "--ne"}, []string{"--net", "--netns"}, nil},
		{[]string{"run", "--netns", ns[:6]}, []string{ns}, nil},
		{[]string{"completion", ""}, []string{"bash", "zsh"}, nil},
		{[]string{"run", "--", "l"}, nil, []string{"link"}},
	} {
		got := complete(tc.words...)
		set := map[string]bool{}
		for _, g := range got {
			set[g] = true
		}
		for _, w := range tc.want {
			if !set[w] {
				t.Errorf("completing %q: %v lacks %q", tc.words, got, w)
			}
		}
		for _, w := range tc.not {
			if set[w] {
				t.Errorf("completing %q: %v offers %q", tc.words, got, w)
			}
		}
	}
}

// TestMakeInstall: make install DESTDIR=... PREFIX=/usr puts the binary,
// the man page and both completions where bash-completion, man and zsh look
// (under DESTDIR), and each works: the binary runs, man finds the page,
// the completions parse.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bin/nsbox with make")
	}
	makeTool := testutil.RequireTool(t, "make")
	bash := testutil.RequireTool(t, "bash")
	dest := t.TempDir()
	cmd := exec.Command(makeTool, "-C", "../..", "install", "DESTDIR="+dest, "PREFIX=/usr")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	bin := filepath.Join(dest, "usr/bin/nsbox")
	if out, err := exec.Command(bin, "--version").Output(); err != nil || !strings.HasPrefix(string(out), "nsbox ") {
		t.Errorf("installed nsbox --version: %v, %q", err, out)
	}
	page, err := os.ReadFile(filepath.Join(dest, "usr/share/man/man1/nsbox.1"))
	if want, _ := os.ReadFile(manPath); err != nil || string(page) != string(want) {
		t.Errorf("installed man page: %v, or it differs from doc/nsbox.1", err)
	}
	if man, err := exec.LookPath("man"); err == nil {
		if out, err := exec.Command(man, "-M", filepath.Join(dest, "usr/share/man"), "-w", "nsbox").Output(); err != nil || !strings.HasPrefix(string(out), dest) {
			t.Errorf("man -w nsbox under DESTDIR: %v, %q", err, out)
		}
	}
	for _, f := range []string{"usr/share/bash-completion/completions/nsbox", "usr/share/zsh/site-functions/_nsbox"} {
		p := filepath.Join(dest, f)
		if _, err := os.Stat(p); err != nil {
			t.Errorf("make install did not install %s: %v", f, err)
			continue
		}
		if strings.HasSuffix(f, "/nsbox") {
			if out, err := exec.Command(bash, "-n", p).CombinedOutput(); err != nil {
				t.Errorf("bash -n %s: %v %s", f, err, out)
			}
		}
	}
}
