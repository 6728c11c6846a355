package cni_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nsbox/nsbox/internal/testutil"
)

// The tests drive the real nsbox binary (built once per run) through real
// clients: cnitool, podman, and the plugin protocol itself; every result is
// checked against ip -j, nft -j, the allocation files and dnsmasq.

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// pluginBinary builds cmd/nsbox once into a temporary folder.
func pluginBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "nsbox-cni-bin")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "nsbox"), "github.com/nsbox/nsbox/cmd/nsbox").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "nsbox")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// lab is one test's CNI world: a runtime namespace (where the bridge, the
// keeper's sockets' users and nftables live), a CNI_PATH holding nsbox and
// the reference plugins, and temporary config, data and socket folders.
type lab struct {
	t        testing.TB
	RT       string // runtime namespace
	Bridge   string
	Net      string // network name
	CNIPath  string
	NetDir   string
	DataDir  string
	SockDir  string
	Log      string
	Subnet   string // "10.A.B" (a /24)
	Plugin   string // the nsbox binary in CNIPath
	cnitool  string
	ExtraEnv []string
}

func newLab(t testing.TB) *lab {
	t.Helper()
	testutil.RequirePriv(t)
	testutil.RequireTool(t, "ip")
	testutil.RequireTool(t, "nsenter")
	cnitool := cnitoolPath(t)
	dir := t.TempDir()
	l := &lab{
		t: t, RT: testutil.NewNetns(t), Bridge: testutil.UniqueName("cbr"), Net: testutil.UniqueName("net"),
		CNIPath: filepath.Join(dir, "bin"), NetDir: filepath.Join(dir, "net.d"), DataDir: filepath.Join(dir, "data"),
		SockDir: filepath.Join(dir, "run"), Log: filepath.Join(dir, "plugin.log"), cnitool: cnitool,
	}
	b := testutil.UniqueName("")
	x, _ := strconv.ParseUint(b[:4], 16, 16)
	l.Subnet = fmt.Sprintf("10.%d.%d", 50+int(x>>8)%150, int(x&0xff))
	for _, d := range []string{l.CNIPath, l.NetDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l.Plugin = filepath.Join(l.CNIPath, "nsbox")
	copyFile(t, pluginBinary(t), l.Plugin)
	if ents, err := os.ReadDir("/usr/lib/cni"); err == nil {
		for _, e := range ents {
			_ = os.Symlink(filepath.Join("/usr/lib/cni", e.Name()), filepath.Join(l.CNIPath, e.Name()))
		}
	}
	t.Cleanup(l.stopKeeper)
	return l
}

func cnitoolPath(t testing.TB) string {
	if p, err := exec.LookPath("cnitool"); err == nil {
		return p
	}
	gp, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gp)), "bin", "cnitool")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return testutil.RequireTool(t, "cnitool")
}

func copyFile(t testing.TB, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// stopKeeper kills the lab's lease keeper, if one runs, and waits for it.
func (l *lab) stopKeeper() {
	pid := l.keeperPid()
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	_ = os.Remove(filepath.Join(l.SockDir, "keeper.pid"))
}

func (l *lab) keeperPid() int {
	b, err := os.ReadFile(filepath.Join(l.SockDir, "keeper.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// nsboxConf is the nsbox plugin object of the lab with ipam and extra
// fields merged in.
func (l *lab) nsboxConf(ipam map[string]any, extra map[string]any) map[string]any {
	c := map[string]any{"type": "nsbox", "bridge": l.Bridge, "log": l.Log, "ipam": ipam}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// rangeIPAM is an nsbox-range ipam object over the lab's /24.
func (l *lab) rangeIPAM() map[string]any {
	return map[string]any{"type": "nsbox-range", "subnet": l.Subnet + ".0/24", "dataDir": l.DataDir}
}

// writeConflist writes NETDIR/NAME.conflist.
func (l *lab) writeConflist(version string, plugins ...map[string]any) {
	l.t.Helper()
	b, err := json.MarshalIndent(map[string]any{"cniVersion": version, "name": l.Net, "plugins": plugins}, "", "  ")
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.NetDir, l.Net+".conflist"), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// run runs name inside the runtime namespace (nsenter --net) with the
// lab's CNI environment and returns stdout, stderr and the exit code.
func (l *lab) run(stdin []byte, env []string, name string, args ...string) (string, string, int) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + l.RT, "--", name}, args...)...)
	c.Env = append(os.Environ(), "NETCONFPATH="+l.NetDir, "CNI_PATH="+l.CNIPath)
	c.Env = append(c.Env, l.ExtraEnv...)
	c.Env = append(c.Env, env...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	err := c.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

// cni runs cnitool VERB NET NETNS and fails t unless it succeeds.
func (l *lab) cni(verb, ns string, env ...string) string {
	l.t.Helper()
	out, errs, code := l.run(nil, env, l.cnitool, verb, l.Net, "/run/netns/"+ns)
	if verb == "add" {
		l.delOnCleanup(ns, env...)
	}
	if code != 0 {
		l.t.Fatalf("cnitool %s %s %s: exit %d: %s %s\nplugin log:\n%s", verb, l.Net, ns, code, out, errs, l.logText())
	}
	return out
}

// delOnCleanup runs cnitool del for ns when the test ends, so that a test
// that fails half way leaves no attachment and no libcni cache entry
// (/var/lib/cni/results) behind; DEL is idempotent.
func (l *lab) delOnCleanup(ns string, env ...string) {
	l.t.Cleanup(func() { _, _, _ = l.run(nil, env, l.cnitool, "del", l.Net, "/run/netns/"+ns) })
}

func (l *lab) logText() string {
	b, _ := os.ReadFile(l.Log)
	return string(b)
}

// parseResult decodes a 1.x result with the library's types/100.
func parseResult(t testing.TB, out string) *current.Result {
	t.Helper()
	r, err := current.NewResult([]byte(out))
	if err != nil {
		t.Fatalf("result %q: %v", out, err)
	}
	res, err := current.GetResult(r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// plugin runs the nsbox binary as a runtime would (CNI_* variables, config
// on stdin) and returns stdout and the exit code.
func (l *lab) plugin(cmd string, conf []byte, containerID, netnsPath, ifName string) (string, int) {
	l.t.Helper()
	env := []string{"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=" + containerID, "CNI_IFNAME=" + ifName}
	if netnsPath != "" {
		env = append(env, "CNI_NETNS="+netnsPath)
	}
	out, _, code := l.run(conf, env, l.Plugin)
	return out, code
}

// cniError decodes a CNI error object.
func cniError(t testing.TB, out string) *types.Error {
	t.Helper()
	var e types.Error
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.Code == 0 {
		t.Fatalf("stdout %q is not a CNI error: %v", out, err)
	}
	return &e
}

// ipAddr is one address of ip -j addr.
type ipAddr struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Valid     int64  `json:"valid_life_time"`
}

type ipLink struct {
	Ifname   string   `json:"ifname"`
	Ifindex  int      `json:"ifindex"`
	Address  string   `json:"address"`
	Master   string   `json:"master"`
	MTU      int      `json:"mtu"`
	Flags    []string `json:"flags"`
	AddrInfo []ipAddr `json:"addr_info"`
}

// links returns ip -j addr of ns (all links with their addresses).
func links(t testing.TB, ns string) []ipLink {
	t.Helper()
	var v []ipLink
	testutil.IPJSON(t, &v, "-n", ns, "addr", "show")
	return v
}

func link(t testing.TB, ns, name string) *ipLink {
	for _, l := range links(t, ns) {
		if l.Ifname == name {
			return &l
		}
	}
	return nil
}

// ports returns the names of the links of ns whose master is br.
func ports(t testing.TB, ns, br string) []string {
	var out []string
	for _, l := range links(t, ns) {
		if l.Master == br {
			out = append(out, l.Ifname)
		}
	}
	return out
}

// nftRules returns the rules of ns's "ip nsbox" table as nft -j objects
// ({"rule": {...}}), none when the table is missing.
func nftRules(t testing.TB, ns string) []map[string]any {
	t.Helper()
	testutil.RequireTool(t, "nft")
	out, err := testutil.CmdErr("ip", "netns", "exec", ns, "nft", "-j", "list", "table", "ip", "nsbox")
	if err != nil {
		if strings.Contains(err.Error(), "No such file") {
			return nil
		}
		t.Fatalf("nft list table: %v", err)
	}
	var v struct {
		Nftables []map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	var rules []map[string]any
	for _, o := range v.Nftables {
		if _, ok := o["rule"]; ok {
			rules = append(rules, o)
		}
	}
	return rules
}

// allocations returns the host-local-style files of the lab's network:
// address -> "containerID\r\nifname".
func (l *lab) allocations() map[string]string {
	out := map[string]string{}
	ents, _ := os.ReadDir(filepath.Join(l.DataDir, l.Net))
	for _, e := range ents {
		if strings.Count(e.Name(), ".") == 3 {
			b, _ := os.ReadFile(filepath.Join(l.DataDir, l.Net, e.Name()))
			out[e.Name()] = string(b)
		}
	}
	return out
}

// containerID is the id cnitool derives from a netns path.
func containerID(ns string) string {
	return cnitoolID("/run/netns/" + ns)
}

func cnitoolID(path string) string {
	s := sha512.Sum512([]byte(path))
	return fmt.Sprintf("cnitool-%x", s[:10])
}
