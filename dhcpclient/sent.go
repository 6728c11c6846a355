package dhcpclient

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// sentWait bounds waitSent: the kernel gives up resolving a neighbour
// after 3 probes 1 s apart (then it drops what waited for it).
const sentWait = 3 * time.Second

// waitSent waits (at most sentWait, or until ctx ends) until the datagrams
// written on the UDP socket fd have left the socket's namespace: while
// the kernel resolves the server's link address, a unicast datagram waits
// in the neighbour's queue, still charged to the socket (SIOCOUTQ), and
// it is dropped if the namespace is destroyed first. Why: a sandbox's
// DHCPRELEASE is the last thing its namespace sends before the namespace
// is closed, and its neighbour entry for the server may be gone (the
// kernel collects stale entries when the table, shared by every
// namespace, holds more than gc_thresh1: 100 sandboxes of a pool do);
// without this wait the release was lost and the lease stayed at the
// server (TestRunPoolCLI under load). Only a RELEASE waits (lastSender):
// a client that keeps running loses nothing by closing its socket early
// (the queued datagram holds the socket's memory, not its fd).
func waitSent(ctx context.Context, fd int) {
	deadline := time.Now().Add(sentWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
		if err != nil || n == 0 || ctx.Err() != nil || !time.Now().Before(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
