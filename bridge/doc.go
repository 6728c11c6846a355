// Package bridge manages Linux bridges and their ports in any network
// namespace, over rtnetlink only (no ioctls, no writes to /sys): what brctl
// does, on top of an rtnl.Conn opened in the namespace.
//
// Scope: create and delete a bridge (Add, Delete); add and remove ports
// (AddPort, RemovePort); describe bridges with their id, STP state, timers
// and ports with their STP state (Get, List); list the forwarding database
// (FDB); change STP, forward delay, ageing time and priority (Set, SetSTP).
//
// Every request is checked before it is sent, so a refusal changes nothing:
// AddPort refuses a device that already has a master (the kernel itself
// would move it silently), a bridge as its own port, a missing device;
// Delete refuses a bridge that is up or has ports unless DeleteOptions.Force
// is set. Errors have one shape, *Error ("bridge: OP OBJECT: cause"), whose
// cause matches the sentinels (ErrNoDevice, ErrInUse, ...) and the kernel's
// errno with errors.Is.
//
// Speed: Get and List never send one request per port. The ports of every
// bridge come from one AF_BRIDGE link dump (the kernel's compact per-port
// messages, with IFLA_PROTINFO, the dump `bridge link` uses) joined by
// index with the bridge itself (one RTM_GETLINK) or with a dump of the
// bridges filtered by kind in the kernel. FDB adds one AF_BRIDGE neighbour
// dump. Every request goes through rtnl.Conn.Execute on the connection's
// own socket (no second socket, no decoding of replies into rtnetlink
// structures): AddPort costs one RTM_GETLINK for the device (the checks
// above need its kind, flags, type and master) and one RTM_NEWLINK, and a
// Session resolves each bridge once.
//
// Privileges: reading needs none; changing bridges needs CAP_NET_ADMIN in
// the namespace's owning user namespace.
//
// Concurrency: the functions send a request and read its reply on the
// connection; do not use the same rtnl.Conn from several goroutines at once.
//
// Debugging: compare with `ip -d -j link show`, `bridge -j link`,
// `bridge -j fdb show br BR` and `brctl show` run in the same namespace
// (`ip netns exec NS ...`). To see the messages themselves, use
// `strace -e sendto,recvfrom -x` or capture them on an nlmon device.
// The bridge-specific encoders and decoders are in codec.go; codec_test.go
// checks them against golden bytes.
package bridge
