// Package dhcp_test measures nsbox's DHCP client and server against their
// peers in the same run:
//
//   - BenchmarkLeaseAcquisition: one lease, from the client's start to the
//     address configured, against dnsmasq --no-ping on a veth between two
//     namespaces: `nsbox dhcp --once` vs `busybox udhcpc -q` vs `dhclient -1`
//     (the peers' scripts add the address with ip, as their stock scripts
//     would; dhcpcd is not installed on Debian 12 here, so it is left out).
//   - BenchmarkLeaseAcquisitionInProcess: the same lease taken by the
//     dhcpclient library in this process (socket, exchange, rtnl apply),
//     which shows what is protocol and what is process start-up.
//   - BenchmarkLeaseMany: N client namespaces on one bridge lease at once
//     from nsbox's embedded server (dhcpserver in this process): N `nsbox
//     dhcp --once` processes vs N udhcpc processes. N is 200 with
//     NSBOX_BENCH_FULL=1 (make bench), 10 otherwise.
//   - BenchmarkDaemonRSS: VmRSS of a foreground `nsbox dhcp` holding a lease,
//     next to a foreground dhclient (reported as the KiB-rss metric).
//
// Run: NSBOX_BENCH_FULL=1 go test -run '^$' -bench . -benchmem ./bench/dhcp
package dhcp_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsbox/nsbox/bench/internal/nsboxbin"
	"github.com/nsbox/nsbox/dhcpclient"
	"github.com/nsbox/nsbox/dhcpserver"
	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// bin is the nsbox binary the benchmarks time (bench/internal/nsboxbin).
var bin nsboxbin.Binary

func TestMain(m *testing.M) { os.Exit(bin.Run(m)) }

func manyClients() int {
	if os.Getenv("NSBOX_BENCH_FULL") == "1" {
		return 200
	}
	return 10
}

func run(b *testing.B, name string, args ...string) string {
	b.Helper()
	out, err := testutil.CmdErr(name, args...)
	if err != nil {
		b.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// addScript writes a udhcpc/dhclient script that configures the address
// with ip, like the stock scripts do, and nothing else (no resolv.conf).
func addScript(b *testing.B, dir string) string {
	b.Helper()
	p := filepath.Join(dir, "add-addr.sh")
	s := `#!/bin/sh
case "$1$reason" in
bound|renew) exec ip addr replace "$ip/$mask" dev "$interface" ;;
BOUND|REBOOT) exec ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
esac
exit 0
`
	if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
		b.Fatal(err)
	}
	return p
}

// vethPair makes a server and a client namespace joined by a veth (s0 with
// 10.S.T.1/24 in the server, eth0 up in the client).
func vethPair(b *testing.B) (server, client, prefix string) {
	b.Helper()
	server, client = testutil.NewNetns(b), testutil.NewNetns(b)
	prefix = "10.213.7"
	run(b, "ip", "-n", server, "link", "add", "s0", "type", "veth", "peer", "name", "eth0", "netns", client)
	run(b, "ip", "-n", server, "addr", "add", prefix+".1/24", "dev", "s0")
	run(b, "ip", "-n", server, "link", "set", "s0", "up")
	run(b, "ip", "-n", client, "link", "set", "eth0", "up")
	return server, client, prefix
}

func hasAddr(b *testing.B, ns string) bool {
	b.Helper()
	return strings.Contains(run(b, "ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"), " inet ")
}

// startDnsmasq runs dnsmasq --no-ping on s0 of namespace server (vethPair's
// server end), leasing prefix.100-200 with its files in dir, and waits
// until it listens.
func startDnsmasq(b *testing.B, server, prefix, dir string) {
	b.Helper()
	dm := testutil.StartProc(b, "ip", "netns", "exec", server, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--port=0", "--interface=s0", "--bind-interfaces",
		"--dhcp-range="+prefix+".100,"+prefix+".200,255.255.255.0,1h",
		"--dhcp-leasefile="+filepath.Join(dir, "dnsmasq.leases"), "--pid-file="+filepath.Join(dir, "dnsmasq.pid"),
		"--no-ping")
	testutil.WaitUDPListen(b, server, 67, dm)
}

func BenchmarkLeaseAcquisition(b *testing.B) {
	testutil.RequirePriv(b)
	for _, tool := range []string{"ip", "dnsmasq", "busybox", "dhclient"} {
		testutil.RequireTool(b, tool)
	}
	server, client, prefix := vethPair(b)
	dir := b.TempDir()
	startDnsmasq(b, server, prefix, dir)
	script := addScript(b, dir)
	clients := leaseClients(b, client, script)
	for _, c := range clients {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				run(b, "ip", "-n", client, "addr", "flush", "dev", "eth0")
				lease := filepath.Join(b.TempDir(), "lease")
				args := c.cmd(lease)
				b.StartTimer()
				if out, err := testutil.CmdErr(args[0], args[1:]...); err != nil {
					b.Fatalf("%s: %v: %s", c.name, err, out)
				}
				b.StopTimer()
				if c.stop != nil {
					c.stop(lease)
				}
				if !hasAddr(b, client) {
					b.Fatalf("%s exited without configuring an address", c.name)
				}
				b.StartTimer()
			}
		})
	}
}

// leaseClient is one DHCP client run as a whole process for one lease.
type leaseClient struct {
	name string
	cmd  func(lease string) []string
	stop func(lease string) // after the measured part
}

// leaseClients are nsbox and its peers, leasing on eth0 of namespace client.
func leaseClients(b *testing.B, client, script string) []leaseClient {
	nsbox := bin.Need(b)
	return []leaseClient{
		{"nsbox", func(lease string) []string {
			return []string{nsbox, "-n", client, "dhcp", "eth0", "--once", "--timeout", "20s", "--no-dns", "--lease-file", lease}
		}, nil},
		{"udhcpc", func(string) []string {
			return []string{"ip", "netns", "exec", client, "busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", script}
		}, nil},
		{"dhclient", func(lease string) []string {
			return []string{"ip", "netns", "exec", client, "dhclient", "-1", "-sf", script, "-lf", lease, "-pf", lease + ".pid", "eth0"}
		}, func(lease string) { // -1 leaves a daemon renewing the lease
			killByCmdline(b, lease)
		}},
	}
}

// BenchmarkLeaseAcquisitionAlternated is BenchmarkLeaseAcquisition with the
// clients alternated inside each iteration (order rotated every round), so
// that a busy machine slows all of them alike. It reports each client's
// median as NAME-ms and nsbox's median over the fastest peer's as
// nsbox/fastest.
func BenchmarkLeaseAcquisitionAlternated(b *testing.B) {
	testutil.RequirePriv(b)
	for _, tool := range []string{"ip", "dnsmasq", "busybox", "dhclient"} {
		testutil.RequireTool(b, tool)
	}
	server, client, prefix := vethPair(b)
	dir := b.TempDir()
	startDnsmasq(b, server, prefix, dir)
	clients := leaseClients(b, client, addScript(b, dir))
	times := make([][]time.Duration, len(clients))
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		for k := range clients {
			j := (i + k) % len(clients)
			c := clients[j]
			run(b, "ip", "-n", client, "addr", "flush", "dev", "eth0")
			lease := filepath.Join(b.TempDir(), "lease")
			args := c.cmd(lease)
			start := time.Now()
			b.StartTimer()
			out, err := testutil.CmdErr(args[0], args[1:]...)
			b.StopTimer()
			times[j] = append(times[j], time.Since(start))
			if err != nil {
				b.Fatalf("%s: %v: %s", c.name, err, out)
			}
			if c.stop != nil {
				c.stop(lease)
			}
			if !hasAddr(b, client) {
				b.Fatalf("%s exited without configuring an address", c.name)
			}
		}
	}
	med := make([]float64, len(clients))
	fastest := 0.0
	for j, c := range clients {
		ts := append([]time.Duration(nil), times[j]...)
		slices.Sort(ts)
		med[j] = float64(ts[len(ts)/2].Microseconds()) / 1000
		b.ReportMetric(med[j], c.name+"-ms")
		if j > 0 && (fastest == 0 || med[j] < fastest) {
			fastest = med[j]
		}
	}
	b.ReportMetric(med[0]/fastest, "nsbox/fastest")
}

func BenchmarkLeaseAcquisitionInProcess(b *testing.B) {
	testutil.RequirePriv(b)
	testutil.RequireTool(b, "dnsmasq")
	server, client, prefix := vethPair(b)
	dir := b.TempDir()
	startDnsmasq(b, server, prefix, dir)
	h, err := netns.Open(client)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	rc, err := rtnl.Dial(h)
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	link, err := rc.LinkByName(context.Background(), "eth0")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("nsbox", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			run(b, "ip", "-n", client, "addr", "flush", "dev", "eth0")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			b.StartTimer()
			pc, err := dhcpclient.Listen(h, "eth0")
			if err != nil {
				b.Fatal(err)
			}
			c, err := dhcpclient.New("eth0", link.HardwareAddr, pc,
				dhcpclient.WithApplier(&dhcpclient.RtnlApplier{Conn: rc, Dev: "eth0"}))
			if err != nil {
				b.Fatal(err)
			}
			_, err = c.Acquire(ctx)
			b.StopTimer()
			cancel()
			c.Close()
			if err != nil {
				b.Fatal(err)
			}
			if !hasAddr(b, client) {
				b.Fatal("no address configured")
			}
			b.StartTimer()
		}
	})
}

// serveEmbedded runs dhcpserver on the lab bridge until b ends.
func serveEmbedded(b *testing.B, lab *testutil.DHCPLab) {
	b.Helper()
	h, err := netns.Open(lab.ServerNS)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	srv, err := dhcpserver.New(netip.MustParsePrefix(lab.ServerIP+"/24"), netip.MustParseAddr(lab.Prefix+".2"),
		netip.MustParseAddr(lab.Prefix+".254"), dhcpserver.WithRouter(netip.MustParseAddr(lab.ServerIP)))
	if err != nil {
		b.Fatal(err)
	}
	pc, err := dhcpserver.ListenUDP(h, lab.Bridge)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Serve: %v", err)
		}
	})
}

func BenchmarkLeaseManyProcs(b *testing.B) {
	testutil.RequirePriv(b)
	nsbox := bin.Need(b)
	testutil.RequireTool(b, "busybox")
	n := manyClients()
	lab := testutil.NewDHCPLab(b, n, true)
	serveEmbedded(b, lab)
	dir := b.TempDir()
	script := addScript(b, dir)
	for _, impl := range []string{"nsbox", "udhcpc"} {
		b.Run(fmt.Sprintf("N=%d/%s", n, impl), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				flushAll(b, lab)
				b.StartTimer()
				errs := make([]error, n)
				var wg sync.WaitGroup
				for j, ns := range lab.Clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var args []string
						if impl == "nsbox" {
							args = []string{nsbox, "-n", ns, "dhcp", "eth0", "--once", "--timeout", "30s",
								"--retry", "500ms", "--no-dns", "--lease-file", filepath.Join(dir, ns+".lease")}
						} else {
							args = []string{"ip", "netns", "exec", ns, "busybox", "udhcpc", "-f", "-q", "-n", "-t", "20",
								"-T", "1", "-i", "eth0", "-s", script}
						}
						if out, err := testutil.CmdErr(args[0], args[1:]...); err != nil {
							errs[j] = fmt.Errorf("%s: %v: %s", ns, err, out)
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				seen := map[string]bool{}
				failed := 0
				for j, err := range errs {
					if err != nil && impl != "nsbox" {
						// A peer that gives up under the broadcast storm is
						// counted, not fatal: the failures metric shows it.
						failed++
						b.Logf("%s failed: %v", impl, err)
						continue
					}
					if err != nil {
						b.Fatal(err)
					}
					a := testutil.IPv4Addrs(b, lab.Clients[j], "eth0")
					if len(a) != 1 {
						b.Fatalf("%s: addresses %v", lab.Clients[j], a)
					}
					for k := range a {
						if seen[k] {
							b.Fatalf("address %s leased twice", k)
						}
						seen[k] = true
					}
				}
				for _, f := range lab.Clients {
					os.Remove(filepath.Join(dir, f+".lease"))
				}
				b.ReportMetric(float64(failed), "failures")
				b.StartTimer()
			}
		})
	}
}

// BenchmarkLeaseMany: N clients of the dhcpclient library (one process,
// one packet socket per namespace, the way `nsbox run --dhcp` and a lab
// controller use it) lease at once from the embedded server on one bridge;
// the time runs from opening the sockets to every address configured.
func BenchmarkLeaseMany(b *testing.B) {
	testutil.RequirePriv(b)
	n := manyClients()
	lab := testutil.NewDHCPLab(b, n, true)
	serveEmbedded(b, lab)
	handles := make([]*netns.Handle, n)
	conns := make([]*rtnl.Conn, n)
	macs := make([]net.HardwareAddr, n)
	for i, ns := range lab.Clients {
		h, err := netns.Open(ns)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		c, err := rtnl.Dial(h)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		l, err := c.LinkByName(context.Background(), "eth0")
		if err != nil {
			b.Fatal(err)
		}
		handles[i], conns[i], macs[i] = h, c, l.HardwareAddr
	}
	b.Run(fmt.Sprintf("N=%d/nsbox", n), func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			flushAll(b, lab)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			b.StartTimer()
			errs := make([]error, n)
			clients := make([]*dhcpclient.Client, n)
			var wg sync.WaitGroup
			for j := range lab.Clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					pc, err := dhcpclient.Listen(handles[j], "eth0")
					if err != nil {
						errs[j] = err
						return
					}
					c, err := dhcpclient.New("eth0", macs[j], pc, dhcpclient.WithFirstRetry(500*time.Millisecond),
						dhcpclient.WithApplier(&dhcpclient.RtnlApplier{Conn: conns[j], Dev: "eth0"}))
					if err != nil {
						pc.Close()
						errs[j] = err
						return
					}
					clients[j] = c
					_, errs[j] = c.Acquire(ctx)
				}()
			}
			wg.Wait()
			b.StopTimer()
			cancel()
			for _, c := range clients {
				if c != nil {
					c.Close()
				}
			}
			seen := map[string]bool{}
			for j, err := range errs {
				if err != nil {
					b.Fatalf("%s: %v", lab.Clients[j], err)
				}
				a := testutil.IPv4Addrs(b, lab.Clients[j], "eth0")
				if len(a) != 1 {
					b.Fatalf("%s: addresses %v", lab.Clients[j], a)
				}
				for k := range a {
					if seen[k] {
						b.Fatalf("address %s leased twice", k)
					}
					seen[k] = true
				}
			}
			b.StartTimer()
		}
	})
}

func flushAll(b *testing.B, lab *testutil.DHCPLab) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(lab.Clients))
	sem := make(chan struct{}, 8)
	for _, ns := range lab.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := testutil.CmdErr("ip", "-n", ns, "addr", "flush", "dev", "eth0"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// rssKiB reads VmRSS of pid from /proc.
func rssKiB(pid int) (int, error) {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(s), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func BenchmarkDaemonRSS(b *testing.B) {
	testutil.RequirePriv(b)
	nsbox := bin.Need(b)
	testutil.RequireTool(b, "dhclient")
	for _, impl := range []string{"nsbox", "dhclient"} {
		b.Run(impl, func(b *testing.B) {
			b.ReportAllocs()
			var rss int
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				lab := testutil.NewDHCPLab(b, 1, true)
				serveEmbedded(b, lab)
				dir := b.TempDir()
				ns := lab.Clients[0]
				var p *testutil.Proc
				if impl == "nsbox" {
					p = testutil.StartProc(b, nsbox, "-n", ns, "dhcp", "eth0", "--no-dns", "--retry", "200ms", "--lease-file", filepath.Join(dir, "l"))
				} else {
					p = testutil.StartProc(b, "ip", "netns", "exec", ns, "dhclient", "-d", "-1", "-sf", addScript(b, dir),
						"-lf", filepath.Join(dir, "l"), "-pf", filepath.Join(dir, "pid"), "eth0")
				}
				b.StartTimer()
				ok := false
				for j := 0; j < 1500 && !ok; j++ {
					ok = len(testutil.IPv4Addrs(b, ns, "eth0")) == 1
					if !ok {
						time.Sleep(10 * time.Millisecond)
					}
				}
				b.StopTimer()
				if !ok {
					b.Fatalf("%s: no lease within 15s: %s", impl, p.Stderr.String())
				}
				time.Sleep(200 * time.Millisecond) // settle into BOUND
				kib, err := rssKiB(p.Cmd.Process.Pid)
				if err != nil {
					b.Fatal(err)
				}
				rss = max(rss, kib)
				b.StartTimer()
			}
			b.ReportMetric(float64(rss), "KiB-rss")
		})
	}
}

// killByCmdline kills every process whose command line mentions marker (a
// path unique to one run) and waits, bounded, until none is left. dhclient -1
// forks a daemon that keeps the lease; its pid file may not be written yet
// when the parent exits, so the daemon is found through /proc instead.
func killByCmdline(b *testing.B, marker string) {
	b.Helper()
	for try := 0; try < 100; try++ {
		found := 0
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil || !strings.Contains(string(cmd), marker) {
				continue
			}
			found++
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
				_, _ = p.Wait() // reaps it if it is our child; harmless otherwise
			}
		}
		if found == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Errorf("processes mentioning %s survived SIGKILL", marker)
}
