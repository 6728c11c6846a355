package cni

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/netns"
)

// inNetns runs f on a thread that is inside the namespace name, and leaves
// that thread to die if it cannot go back to the test's namespace.
func inNetns(t *testing.T, name string, f func()) {
	t.Helper()
	target, err := netns.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	orig, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := unix.Setns(target.Fd(), unix.CLONE_NEWNET); err != nil {
			t.Errorf("setns %s: %v", name, err)
			runtime.UnlockOSThread()
			return
		}
		f()
		if err := unix.Setns(orig.Fd(), unix.CLONE_NEWNET); err != nil {
			t.Errorf("setns back: %v (the thread stays locked and dies)", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
}

// linkNames lists the links of namespace ns with `ip -j link`.
func linkNames(t *testing.T, ns string) map[string]bool {
	t.Helper()
	var links []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(testutil.Cmd(t, "ip", "-n", ns, "-j", "link", "show")), &links); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range links {
		out[l.Name] = true
	}
	return out
}

// TestUnlink deletes a veth (both ends gone when unlink returns, its name
// free at once) and gets the kernel's refusal to delete lo back as the
// error.
func TestUnlink(t *testing.T) {
	ns := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "ua0", "type", "veth", "peer", "name", "ub0")
	testutil.Cmd(t, "ip", "-n", ns, "link", "set", "ua0", "up")
	var idx struct {
		Index int `json:"ifindex"`
	}
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(testutil.Cmd(t, "ip", "-n", ns, "-j", "link", "show", "ua0")), &arr); err != nil || len(arr) != 1 {
		t.Fatalf("ip -j link show ua0: %v", err)
	}
	if err := json.Unmarshal(arr[0], &idx); err != nil || idx.Index == 0 {
		t.Fatalf("ifindex of ua0: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errDel, errLo error
	inNetns(t, ns, func() {
		errDel = unlink(ctx, ifinfomsg(unix.AF_UNSPEC, idx.Index, 0, 0, nil), []string{"ua0"})
	})
	if errDel != nil {
		t.Fatalf("unlink ua0: %v", errDel)
	}
	if l := linkNames(t, ns); l["ua0"] || l["ub0"] {
		t.Fatalf("after unlink the namespace still lists %v", l)
	}
	// The name is free at once.
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "ua0", "type", "veth", "peer", "name", "ub0")
	inNetns(t, ns, func() {
		errLo = unlink(ctx, ifinfomsg(unix.AF_UNSPEC, 1, 0, 0, nil), []string{"lo"})
	})
	if !errors.Is(errLo, unix.EOPNOTSUPP) {
		t.Fatalf("unlink lo = %v, want the kernel's EOPNOTSUPP", errLo)
	}
	if l := linkNames(t, ns); !l["lo"] {
		t.Fatalf("lo is gone: %v", l)
	}
}
