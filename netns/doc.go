// Package netns manages named network namespaces exactly as iproute2 keeps
// them, so that `ip netns` and nsbox see and use each other's: a namespace
// named NAME is a network namespace bind-mounted onto the empty file
// /run/netns/NAME, and /run/netns is a shared mount point of its own.
//
// Add makes the new namespace on a goroutine locked to a fresh OS thread
// that is never unlocked, so the Go runtime terminates the thread afterwards
// (never the main thread, which the runtime would park instead): no thread
// that serves other goroutines ever enters the new namespace. Exec runs a
// command inside a named namespace through nsclone, whose C child does the
// setns, as `ip netns exec` does.
//
// It also gives handles (open file descriptors) to any network namespace: by
// name, by path, by pid or the caller's own. Packages on top (rtnl) use the
// descriptor to open netlink sockets inside a namespace without moving any
// thread; Do is the one place where a thread enters a namespace (for packet
// sockets and the like), on a goroutine locked to a fresh OS thread.
//
// # Privileges
//
// Open, OpenPid, Current, List, Identify and Pids only read /proc and
// /run/netns. Add and Delete need CAP_SYS_ADMIN (they create namespaces and
// mount); Do needs CAP_SYS_ADMIN in the target namespace's user namespace.
// Exec needs what nsclone needs to join a namespace and make a mount
// namespace.
//
// # Debugging
//
// Every error names the operation and the namespace and wraps the errno, so
// errors.Is(err, unix.EEXIST) and friends work. What this package did is
// visible with `ip netns list`, `findmnt -R /run/netns` and
// `ls -l /proc/PID/ns/net`; `ip netns identify PID` must agree with Identify.
package netns
