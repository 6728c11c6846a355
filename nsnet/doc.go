// Package nsnet wires the network of a freshly spawned sandbox: a veth pair
// whose sandbox end is created directly inside the child's new network
// namespace (no move, so no RCU grace period), whose other end joins a bridge
// and comes up, loopback up inside, and an address from DHCP or a static one
// with a default route. It is what `nsbox run --net --bridge BR` uses, through
// nsclone.Spec.BeforeExec, so the payload's first instruction already sees a
// configured network.
//
// It sits on top of rtnl, netns and dhcpclient; nsclone does not import it
// (the hook is a plain func), so there is no import cycle.
//
// # Privileges
//
// CAP_NET_ADMIN in the bridge's namespace and in the child's; CAP_SYS_ADMIN to
// open a packet socket inside the child's namespace for DHCP.
//
// # Debugging
//
// The host end of the veth is named "nsb" followed by the child's pid in hex;
// `ip -d link show master BR` lists the sandboxes on a bridge, and
// `nsbox -j netns identify PID` or `ip -n` on /proc/PID/ns/net shows the inside.
package nsnet
