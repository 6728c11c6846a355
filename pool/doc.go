// Package pool keeps network namespaces ready for sandboxes: each one with
// loopback up, a veth whose other end is a port of a bridge, an address
// (leased by DHCP or taken from a range), a default route and DNS servers,
// so that a sandbox joins a wired namespace instead of waiting for its
// network.
//
// A Pool (Start) fills itself to Config.Size ready namespaces and refills in
// the background. Claim hands one out as a Slot; Slot.Release destroys it:
// a namespace is used once and never handed out again, so nothing a payload
// left in it (sockets, routes, firewall rules) reaches the next sandbox. Its
// lease is released and the kernel removes its veth with it.
//
// Namespaces are held only by file descriptors, never bind-mounted, so a
// pool that dies (even by SIGKILL) leaves nothing but the kernel's own
// teardown behind.
//
// With Config.Name set, the pool also serves other processes over the Unix
// socket /run/nsbox/pools/NAME.sock (SOCK_SEQPACKET): a Client's claim gets
// the namespace as a file descriptor (SCM_RIGHTS) with its address, and
// releases it by closing the connection, so a client that dies releases its
// slot too. The server accepts only clients of its own uid or root
// (SO_PEERCRED), and a Client refuses a socket owned by another user.
//
// # Privileges and debugging
//
// A pool needs CAP_NET_ADMIN and CAP_SYS_ADMIN (unshare of a network
// namespace, links in the bridge's namespace). Config.Logf receives one line
// per refill failure and per DHCP event. `nsbox pool status NAME` shows the
// counters; `ip -n NS link show master BR` shows the ready namespaces' veths.
package pool
