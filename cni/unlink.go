package cni

// #cgo CFLAGS: -Wall -Wextra -Werror
// #include <stdlib.h>
// int nsb_cni_unlink_spawn(const void *msg, size_t len);
import "C"

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// unlinkPoll is how often unlink looks whether the links left the list.
const unlinkPoll = 200 * time.Microsecond

// unlink deletes links with one RTM_DELLINK whose body (struct ifinfomsg
// and attributes) is body, and returns as soon as none of names is listed
// in the caller's network namespace any more, or with the kernel's refusal.
//
// Unregistering a net device keeps the caller in the kernel for several
// RCU grace periods after the device left the namespace's list
// (synchronize_net, a bridge port's rx-handler removal, rcu_barrier):
// 10-50 ms for one veth on a loaded host, about a second for a thousand
// bridge ports. The request is therefore made by a forked child (csrc/cni_unlink.c)
// that finishes that teardown alone; this process waits only until the
// names are gone from /proc/thread-self/net/dev, which the kernel reads under RCU
// (an rtnetlink query would wait for the RTNL lock the teardown holds).
// A new link of the same name can be made at once: creating one takes the
// RTNL lock, which the teardown holds until the old device is unhooked.
// If the child exits first its exit code is the errno of the kernel's
// answer, returned as the error. The child is not waited for when it is
// still in the kernel: it is re-parented when the plugin exits. The
// namespace is the calling thread's (a caller whose threads are in
// different namespaces locks its goroutine to its thread).
func unlink(ctx context.Context, body []byte, names []string) error {
	msg := make([]byte, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:4], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:6], unix.RTM_DELLINK)
	binary.NativeEndian.PutUint16(msg[6:8], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:12], 1)
	copy(msg[unix.SizeofNlMsghdr:], body)
	cmsg := C.CBytes(msg)
	defer C.free(cmsg)
	pid := int(C.nsb_cni_unlink_spawn(cmsg, C.size_t(len(msg))))
	if pid < 0 {
		return fmt.Errorf("delete links: spawn: %w", unix.Errno(-pid))
	}
	pending := map[string]bool{}
	for _, n := range names {
		pending[n] = true
	}
	exited := false
	for {
		if err := dropListed(pending); err != nil {
			// No /proc to look at: wait for the kernel's answer itself.
			if exited {
				return nil
			}
			var ws unix.WaitStatus
			for {
				_, werr := unix.Wait4(pid, &ws, 0, nil)
				if werr != unix.EINTR {
					break
				}
			}
			if !ws.Exited() || ws.ExitStatus() != 0 {
				return fmt.Errorf("delete %s: %w", strings.Join(keys(pending), ","), childErr(ws))
			}
			return nil
		}
		if len(pending) == 0 {
			if !exited {
				var ws unix.WaitStatus
				_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil) // reaps it if done
			}
			return nil
		}
		if !exited {
			var ws unix.WaitStatus
			if p, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && p == pid {
				exited = true
				if code := ws.ExitStatus(); code != 0 || !ws.Exited() {
					return fmt.Errorf("delete %s: %w", strings.Join(keys(pending), ","), childErr(ws))
				}
				continue // done: one more look at the list
			}
		} else {
			return fmt.Errorf("delete %s: still listed after the kernel's acknowledgement", strings.Join(keys(pending), ","))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete %s: %w", strings.Join(keys(pending), ","), ctx.Err())
		case <-time.After(unlinkPoll):
		}
	}
}

// childErr turns the unlink child's exit status into an error.
func childErr(ws unix.WaitStatus) error {
	switch {
	case !ws.Exited():
		return fmt.Errorf("deleting child died: %v", ws.Signal())
	case ws.ExitStatus() < 200:
		return unix.Errno(ws.ExitStatus())
	default:
		return fmt.Errorf("deleting child failed to talk to the kernel (status %d)", ws.ExitStatus())
	}
}

// dropListed removes from pending every name that /proc/thread-self/net/dev does
// not list.
func dropListed(pending map[string]bool) error {
	b, err := os.ReadFile("/proc/thread-self/net/dev")
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	listed := make(map[string]bool, len(pending))
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, _, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if name = strings.TrimSpace(name); pending[name] {
			listed[name] = true
		}
	}
	for n := range pending {
		if !listed[n] {
			delete(pending, n)
		}
	}
	return nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
