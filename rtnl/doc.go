// Package rtnl manages links (veth pairs, bridges, dummies), IPv4 and IPv6
// addresses and routes over rtnetlink, in any network namespace, from pure
// Go. It is a thin layer over github.com/jsimonetti/rtnetlink/v2 and
// github.com/mdlayher/netlink with the words of `ip link|addr|route`.
//
// # Namespaces
//
// A Conn belongs to one network namespace: Dial opens its netlink socket
// inside the namespace given by a netns.Handle (netlink.Config{NetNS: fd}),
// so no caller thread ever switches namespace. Links are moved between
// namespaces by file descriptor (IFLA_NET_NS_FD), and AddVeth creates the
// peer directly inside another namespace in the same request, which avoids
// the RCU grace period a later move costs.
//
// # Behaviour
//
// Links are looked up by name with a direct RTM_GETLINK (no dump); most
// link changes address the device by name in the request itself, and where
// only an index is needed (addresses, a master, a rename) it comes from
// ioctl(SIOCGIFINDEX) on the Conn's own socket, which is cheaper.
//
// # Speed
//
// Requests go out with raw sendto/recvfrom on the socket's descriptor
// (io.go): the kernel answers inside sendto, so the reply is read without
// waiting and without the Go scheduler handing the thread off, which a
// general socket layer costs on every request (a batch of 2000 requests
// spent more in futex wake-ups than in the kernel). Packages on top send
// requests this package does not wrap through Conn.Execute, on the same
// socket. bench/netlink and bench/bridge compare against ip -batch. Dumps that
// the kernel marks interrupted (NLM_F_DUMP_INTR) are retried a bounded
// number of times and are never returned half. A Conn is safe for use by
// one goroutine at a time.
//
// # Privileges
//
// Reading needs nothing; changing links, addresses and routes needs
// CAP_NET_ADMIN in the namespace's user namespace.
//
// # Debugging
//
// Every error is an *Error naming the operation and the object, wrapping the
// errno (errors.Is(err, unix.EEXIST)) and carrying the kernel's extended
// acknowledgement message when it sent one. `ip -n NAME monitor` shows what a
// Conn changes; `strace -e sendto,recvfrom,ioctl` shows the requests.
package rtnl
