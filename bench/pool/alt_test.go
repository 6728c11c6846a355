package pool

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
)

// BenchmarkNetStartAlternated is NetStart/seq with the variants alternated:
// each round starts one sandbox of every variant (the order rotating from
// round to round), so that the load of the shared machine falls on all of
// them alike. It adds run --pool on the Go path (nsbox-pool-go-path,
// NSBOX_NO_FASTPATH=1) beside the C fast path (nsbox-pool), and reports each
// variant's p50 and p99 (sub-benchmarks) and the ratios of the pool's
// medians to the peers' (x-...-p50). Rounds: 300, 1000 with
// NSBOX_BENCH_FULL=1, or NSBOX_BENCH_ROUNDS.
func BenchmarkNetStartAlternated(b *testing.B) {
	testutil.RequirePriv(b)
	testutil.RequireTool(b, "gcc")
	bin, connect := tools(b)
	rounds := 300
	if full() {
		rounds = 1000
	}
	if n, err := strconv.Atoi(os.Getenv("NSBOX_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	ns := lab(b, bin)
	poolName := startPool(b, bin, ns, 16)
	vs := variants(bin, connect, ns, poolName)
	pool := vs[0]
	pool.name, pool.env = "nsbox-pool-go-path", "NSBOX_NO_FASTPATH=1"
	vs = append(vs, pool)
	ds := make(map[string][]time.Duration)
	for i := 0; i < b.N; i++ {
		for j := 0; j < rounds; j++ {
			for k := range vs {
				v := vs[(j+k)%len(vs)]
				d, err := firstByte(v.cmd(bin, j%250))
				if err != nil {
					b.Fatal(err)
				}
				ds[v.name] = append(ds[v.name], d)
				if d > 500*time.Millisecond {
					b.Logf("round %d: %s took %s", j, v.name, d)
				}
			}
		}
	}
	p := func(name string, q int) time.Duration {
		s := append([]time.Duration(nil), ds[name]...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[(len(s)-1)*q/100]
	}
	for _, v := range vs {
		b.Logf("%-22s p50 %7.2f ms  p99 %8.2f ms  (%d starts)", v.name, ms(p(v.name, 50)), ms(p(v.name, 99)), len(ds[v.name]))
	}
	for _, pl := range []string{"nsbox-pool", "nsbox-pool-go-path"} {
		for _, peer := range []string{"net-loopback", "bridge-static", "bridge-dhcp"} {
			r := float64(p(pl, 50)) / float64(p(peer, 50))
			b.ReportMetric(r, fmt.Sprintf("x-%s-vs-%s-p50", pl, peer))
			b.Logf("%s / %s at p50: %.2fx", pl, peer, r)
		}
	}
	for _, v := range vs {
		b.Run(v.name, func(b *testing.B) {
			b.ReportMetric(ms(p(v.name, 50)), "ms-p50")
			b.ReportMetric(ms(p(v.name, 99)), "ms-p99")
			b.ReportMetric(float64(len(ds[v.name])), "starts")
			slow := 0
			for _, d := range ds[v.name] {
				if d > 500*time.Millisecond {
					slow++
				}
			}
			b.ReportMetric(float64(slow), "over-500ms")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
