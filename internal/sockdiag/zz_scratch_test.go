package sockdiag

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
)

func TestScratchCost(t *testing.T) {
	name := testutil.NewNetns(t)
	h, err := netns.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	const N = 300
	st := time.Now()
	for i := 0; i < N; i++ {
		if _, err := Orphans(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("dial+dump: %v", time.Since(st)/N)
	c, obj, _ := dial(h)
	st = time.Now()
	for i := 0; i < N; i++ {
		count(ctx, c, obj)
	}
	t.Logf("dump only: %v", time.Since(st)/N)
	c.Close()
	st = time.Now()
	for i := 0; i < N; i++ {
		c, _, _ := dial(h)
		c.Close()
	}
	t.Logf("dial only: %v", time.Since(st)/N)
	st = time.Now()
	for i := 0; i < N; i++ {
		netns.Do(h, func() error { _, err := os.ReadFile("/proc/thread-self/net/sockstat"); return err })
	}
	t.Logf("Do+sockstat: %v", time.Since(st)/N)
	st = time.Now()
	for i := 0; i < N; i++ {
		netns.Do(h, func() error { return nil })
	}
	t.Logf("Do: %v", time.Since(st)/N)
	var b []byte
	netns.Do(h, func() error { b, _ = os.ReadFile("/proc/thread-self/net/sockstat"); return nil })
	t.Logf("%s", b)
}
