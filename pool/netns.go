package pool

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
)

// newNetns creates a network namespace that only the returned handle holds:
// a thread unshares into it, opens it and goes back. If going back fails the
// thread stays locked and dies with its goroutine instead of serving others
// from the wrong namespace.
func newNetns() (*netns.Handle, error) {
	type result struct {
		h   *netns.Handle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Current()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		h, err := netns.Current()
		if serr := unix.Setns(orig.Fd(), unix.CLONE_NEWNET); serr != nil {
			if h != nil {
				h.Close()
			}
			ch <- result{nil, fmt.Errorf("setns back: %w", serr)} // stays locked
			return
		}
		runtime.UnlockOSThread()
		ch <- result{h, err}
	}()
	r := <-ch
	return r.h, r.err
}
