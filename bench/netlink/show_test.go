package netlinkbench

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"
)

// BenchmarkShowAlternated runs `nsbox -n NS OBJ show` and `ip -n NS OBJ
// show` (link, addr, route) as whole processes, alternated within every
// iteration so that both see the same machine load, on a namespace holding
// a few veth pairs with addresses and routes. Both outputs are compared
// before timing. It reports each tool's median and the ratio nsbox/ip
// (below 1: nsbox is faster). Each iteration runs each tool `rounds` times.
//
// Run: go test -run '^$' -bench ShowAlternated -benchtime=5x ./bench/netlink
func BenchmarkShowAlternated(b *testing.B) {
	ns := hub(b)
	// No IPv6 duplicate address detection, so that the addresses' flags
	// (tentative) do not change between the two tools' outputs.
	run(b, "", "ip", "netns", "exec", ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad")
	for i := 0; i < 4; i++ {
		h, p := addrs(i)
		run(b, "", "ip", "-n", ns, "link", "add", fmt.Sprintf("a%d", i), "type", "veth", "peer", "name", fmt.Sprintf("b%d", i))
		run(b, "", "ip", "-n", ns, "addr", "add", h, "dev", fmt.Sprintf("a%d", i))
		run(b, "", "ip", "-n", ns, "addr", "add", p, "dev", fmt.Sprintf("b%d", i))
		run(b, "", "ip", "-n", ns, "link", "set", fmt.Sprintf("a%d", i), "up")
		run(b, "", "ip", "-n", ns, "link", "set", fmt.Sprintf("b%d", i), "up")
	}
	run(b, "", "ip", "-n", ns, "link", "set", "lo", "up")
	run(b, "", "ip", "-n", ns, "route", "add", "default", "via", "10.128.0.2")
	const rounds = 20
	for _, obj := range []string{"link", "addr", "route"} {
		b.Run(obj, func(b *testing.B) {
			cmds := [2][]string{
				{nsboxBin, "-n", ns, obj, "show"},
				{"ip", "-n", ns, obj, "show"},
			}
			outs := [2]string{}
			for k, c := range cmds {
				out, err := exec.Command(c[0], c[1:]...).Output()
				if err != nil {
					b.Fatalf("%v: %v", c, err)
				}
				outs[k] = string(out)
			}
			if outs[0] != outs[1] {
				b.Fatalf("nsbox and ip differ:\n%s---\n%s", outs[0], outs[1])
			}
			var times [2][]time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for r := 0; r < rounds; r++ {
					for k, c := range cmds {
						times[k] = append(times[k], timeProc(b, c))
					}
				}
			}
			mn, mi := medianOf(times[0]), medianOf(times[1])
			b.ReportMetric(float64(mn.Microseconds())/1000, "nsbox-ms")
			b.ReportMetric(float64(mi.Microseconds())/1000, "ip-ms")
			b.ReportMetric(float64(mn)/float64(mi), "nsbox/ip")
		})
	}
}

// timeProc runs c with its output discarded and returns its wall time from
// start to reaped exit.
func timeProc(b *testing.B, c []string) time.Duration {
	b.Helper()
	cmd := exec.Command(c[0], c[1:]...)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	cmd.Stdout = devnull
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%v: %v", c, err)
	}
	return time.Since(start)
}

func medianOf(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
