// Package cni_test measures nsbox as a CNI plugin against the reference
// plugins of containernetworking-plugins, side by side in one run, through
// the CNI project's own client (cnitool) in a throwaway runtime namespace:
//
//   - BenchmarkAddDel: ADD then DEL of one container with nsbox +
//     nsbox-range against the reference bridge + host-local on the same
//     subnet, the two alternated in every op;
//   - BenchmarkDHCPAdd: ADD (DEL off the clock) with nsbox + nsbox-dhcp
//     against the reference bridge + dhcp (its daemon started here), both
//     leasing from the same dnsmasq;
//   - BenchmarkGC: GC (empty valid list) of N stale nsbox-range attachments
//     (N is 1000 with NSBOX_BENCH_FULL=1, 50 otherwise): "netns-gone", the
//     allocation files of containers whose namespace (and so veth) is gone,
//     and "veths", allocation files plus live veths on the bridge; it has no
//     peer (the reference plugins of Debian 12 speak CNI 1.0, which has no GC).
//
// Run: NSBOX_BENCH_FULL=1 go test -run '^$' -bench . ./cni (in bench/)
package cni_test

import (
	"bytes"
	"context"
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

	"github.com/nsbox/nsbox/bench/internal/nsboxbin"
	"github.com/nsbox/nsbox/internal/names"
	"github.com/nsbox/nsbox/internal/testutil"
)

// bin is the nsbox binary the benchmarks time (bench/internal/nsboxbin).
var bin nsboxbin.Binary

func TestMain(m *testing.M) { os.Exit(bin.Run(m)) }

// world is a runtime namespace with a bridge (fixed MAC, .1/24), the CNI
// folders, and conflists written on demand.
type world struct {
	b       *testing.B
	rt      string
	br      string
	subnet  string
	dir     string
	cniPath string
	netDir  string
	cnitool string
}

func newWorld(b *testing.B) *world {
	b.Helper()
	testutil.RequirePriv(b)
	cnitool, err := exec.LookPath("cnitool")
	if err != nil {
		gp, _ := exec.Command("go", "env", "GOPATH").Output()
		cnitool = filepath.Join(strings.TrimSpace(string(gp)), "bin", "cnitool")
		if _, err := os.Stat(cnitool); err != nil {
			cnitool = testutil.RequireTool(b, "cnitool")
		}
	}
	if _, err := os.Stat("/usr/lib/cni/host-local"); err != nil {
		b.Skip("reference plugins missing (apt-get install containernetworking-plugins)")
	}
	dir := b.TempDir()
	w := &world{b: b, rt: testutil.NewNetns(b), br: testutil.UniqueName("bbr"), dir: dir,
		cniPath: filepath.Join(dir, "bin"), netDir: filepath.Join(dir, "net.d"), cnitool: cnitool}
	x, _ := strconv.ParseUint(testutil.UniqueName("")[:4], 16, 16)
	w.subnet = fmt.Sprintf("10.%d.%d", 50+int(x>>8)%150, int(x&0xff))
	for _, d := range []string{w.cniPath, w.netDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	exe, err := os.ReadFile(bin.Need(b))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.cniPath, "nsbox"), exe, 0o755); err != nil {
		b.Fatal(err)
	}
	ents, _ := os.ReadDir("/usr/lib/cni")
	for _, e := range ents {
		_ = os.Symlink(filepath.Join("/usr/lib/cni", e.Name()), filepath.Join(w.cniPath, e.Name()))
	}
	testutil.Cmd(b, "ip", "-n", w.rt, "link", "add", w.br, "address", "02:00:0a:0b:0c:01", "type", "bridge", "forward_delay", "0")
	testutil.Cmd(b, "ip", "-n", w.rt, "addr", "add", w.subnet+".1/24", "dev", w.br)
	testutil.Cmd(b, "ip", "-n", w.rt, "link", "set", w.br, "up")
	return w
}

func (w *world) conflist(name string, plugin map[string]any) {
	w.b.Helper()
	p, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": name, "plugins": []any{plugin}})
	if err := os.WriteFile(filepath.Join(w.netDir, name+".conflist"), p, 0o644); err != nil {
		w.b.Fatal(err)
	}
}

// cni runs cnitool VERB NET NS in the runtime namespace.
func (w *world) cni(verb, net, ns string) {
	w.b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+w.rt, "--", w.cnitool, verb, net, "/run/netns/"+ns)
	c.Env = append(os.Environ(), "NETCONFPATH="+w.netDir, "CNI_PATH="+w.cniPath)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		w.b.Fatalf("cnitool %s %s: %v: %s", verb, net, err, out.String())
	}
}

// BenchmarkAddDel: one ADD and one DEL per op. Each sub-benchmark also
// runs the other side's ADD+DEL before every op, off the clock, so that
// nsbox and the reference alternate all the time and see the same load on
// a shared machine.
func BenchmarkAddDel(b *testing.B) {
	w := newWorld(b)
	ctr := testutil.NewNetns(b)
	w.conflist("nsbox", map[string]any{"type": "nsbox", "bridge": w.br, "isDefaultGateway": true,
		"ipam": map[string]any{"type": "nsbox-range", "subnet": w.subnet + ".0/24", "dataDir": filepath.Join(w.dir, "nsbox-data")}})
	w.conflist("ref", map[string]any{"type": "bridge", "bridge": w.br, "isDefaultGateway": true,
		"ipam": map[string]any{"type": "host-local", "subnet": w.subnet + ".0/24", "dataDir": filepath.Join(w.dir, "host-local")}})
	for _, impl := range []string{"nsbox", "ref"} {
		name, other := impl, "ref"
		if impl == "ref" {
			name, other = "bridge+host-local", "nsbox"
		}
		b.Run(name, func(b *testing.B) {
			w.b = b
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				w.cni("add", other, ctr)
				w.cni("del", other, ctr)
				b.StartTimer()
				w.cni("add", impl, ctr)
				w.cni("del", impl, ctr)
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median of xs (0 for none); xs is sorted in place.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

// BenchmarkDHCPAdd: the ADD of one container, its address from dnsmasq.
func BenchmarkDHCPAdd(b *testing.B) {
	w := newWorld(b)
	testutil.RequireTool(b, "dnsmasq")
	testutil.StartDnsmasq(b, &testutil.DHCPLab{ServerNS: w.rt, Bridge: w.br, ServerIP: w.subnet + ".1", Prefix: w.subnet})
	ctr := testutil.NewNetns(b)
	sock := filepath.Join(w.dir, "dhcp.sock")
	pluginLog := filepath.Join(w.dir, "nsbox.log")
	w.conflist("nsbox", map[string]any{"type": "nsbox", "bridge": w.br, "log": pluginLog,
		"ipam": map[string]any{"type": "nsbox-dhcp", "dataDir": filepath.Join(w.dir, "nsbox-data"), "socketDir": filepath.Join(w.dir, "run")}})
	w.conflist("ref", map[string]any{"type": "bridge", "bridge": w.br,
		"ipam": map[string]any{"type": "dhcp", "daemonSocketPath": sock}})
	// The reference dhcp plugin needs its daemon started by hand.
	d := testutil.StartProc(b, "nsenter", "--net=/run/netns/"+w.rt, "--", "/usr/lib/cni/dhcp", "daemon", "-socketpath", sock)
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = d
	b.Cleanup(func() { stopKeeper(filepath.Join(w.dir, "run")) })
	for _, impl := range []string{"nsbox", "ref"} {
		name := impl
		if impl == "ref" {
			name = "bridge+dhcp"
		}
		b.Run(name, func(b *testing.B) {
			w.b = b
			_ = os.Remove(pluginLog)
			for i := 0; i < b.N; i++ {
				w.cni("add", impl, ctr)
				b.StopTimer()
				w.cni("del", impl, ctr)
				b.StartTimer()
			}
			if impl == "nsbox" {
				// The plugin's own time per ADD (from its log), to tell
				// it from cnitool's and the exec's share.
				b.ReportMetric(medianOK(pluginLog, "ADD"), "plugin-ms")
			}
		})
	}
}

// medianOK is the median "ok in" duration, in ms, of the plugin log's
// lines for cmd.
func medianOK(path, cmd string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var ds []float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, " "+cmd+" container") {
			continue
		}
		_, after, ok := strings.Cut(line, ": ok in ")
		if !ok {
			continue
		}
		if d, err := time.ParseDuration(strings.TrimSpace(after)); err == nil {
			ds = append(ds, float64(d)/float64(time.Millisecond))
		}
	}
	return median(ds)
}

// medianAfter is the median, in ms, of the durations that follow marker
// in the lines of the log at path.
func medianAfter(path, marker string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var ds []float64
	for _, line := range strings.Split(string(b), "\n") {
		_, after, ok := strings.Cut(line, marker)
		if !ok {
			continue
		}
		f := strings.Fields(strings.TrimRight(after, ")"))
		if len(f) == 0 {
			continue
		}
		if d, err := time.ParseDuration(strings.TrimRight(f[0], "),")); err == nil {
			ds = append(ds, ms(d))
		}
	}
	return median(ds)
}

func stopKeeper(dir string) {
	p, err := os.ReadFile(filepath.Join(dir, "keeper.pid"))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(p)))
	if pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// stale returns the number of stale attachments BenchmarkGC collects.
func stale() int {
	if os.Getenv("NSBOX_BENCH_FULL") == "1" {
		return 1000
	}
	return 50
}

// BenchmarkGC: one GC of N stale attachments per op; the set-up (N
// allocation files and, for "veths", N veths on the bridge named as nsbox
// names them) is off the clock. "netns-gone" is the usual case: the
// containers' namespaces are gone, and with them the kernel deleted the
// veths, so only the allocations are stale; "veths" is the worst case, the
// namespaces still alive and every veth still a bridge port.
func BenchmarkGC(b *testing.B) {
	w := newWorld(b)
	n := stale()
	data := filepath.Join(w.dir, "nsbox-data")
	// GC needs a 1.1.0 list.
	p, _ := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "nsbox", "plugins": []any{map[string]any{"type": "nsbox", "bridge": w.br,
		"log": filepath.Join(w.dir, "gc.log"), "ipam": map[string]any{"type": "nsbox-range", "subnet": "10.0.0.0/16", "dataDir": data}}}})
	if err := os.WriteFile(filepath.Join(w.netDir, "nsbox.conflist"), p, 0o644); err != nil {
		b.Fatal(err)
	}
	ctr := testutil.NewNetns(b)
	for _, veths := range []bool{false, true} {
		name := "netns-gone"
		if veths {
			name = "veths"
		}
		b.Run(name, func(b *testing.B) {
			w.b = b
			_ = os.Remove(filepath.Join(w.dir, "gc.log"))
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				w.staleAttachments(b, data, n, veths)
				b.StartTimer()
				w.cni("gc", "nsbox", ctr)
			}
			b.StopTimer()
			ents, _ := os.ReadDir(filepath.Join(data, "nsbox"))
			if len(ents) > 1 { // last_reserved_ip.0 may stay
				b.Fatalf("%d files left after gc", len(ents))
			}
			if out := testutil.Cmd(b, "ip", "-n", w.rt, "-br", "link", "show", "master", w.br); strings.TrimSpace(out) != "" {
				b.Fatalf("ports left on the bridge after gc:\n%s", out)
			}
			// The plugin's own phases, from its log.
			gcLog := filepath.Join(w.dir, "gc.log")
			b.ReportMetric(medianAfter(gcLog, " allocations removed in "), "allocs-ms")
			b.ReportMetric(medianAfter(gcLog, " veths removed in "), "veths-ms")
			b.ReportMetric(medianAfter(gcLog, "(listing took "), "listing-ms")
			b.ReportMetric(medianAfter(gcLog, ": ok in "), "plugin-ms")
		})
	}
}

// staleAttachments makes n allocations and, with veths, n veths (ip
// -batch) that no container holds any more.
func (w *world) staleAttachments(b *testing.B, data string, n int, veths bool) {
	dir := filepath.Join(data, "nsbox")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var batch strings.Builder
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("stale-%d", i)
		a := fmt.Sprintf("10.0.%d.%d", (i+2)/250, (i+2)%250+2)
		if err := os.WriteFile(filepath.Join(dir, a), []byte(id+"\r\neth0"), 0o600); err != nil {
			b.Fatal(err)
		}
		host := names.CNIHostLink("nsbox", id, "eth0")
		fmt.Fprintf(&batch, "link add %s type veth peer name p%d\nlink set %s master %s up\n", host, i, host, w.br)
	}
	if !veths {
		return
	}
	f := filepath.Join(b.TempDir(), "batch")
	if err := os.WriteFile(f, []byte(batch.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	testutil.Cmd(b, "ip", "-n", w.rt, "-batch", f)
}
