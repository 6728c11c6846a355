// Package cni makes the nsbox binary a CNI plugin ("type": "nsbox"): when a
// runtime runs it with CNI_COMMAND set, Main speaks the CNI protocol on
// stdin and stdout through github.com/containernetworking/cni (skel for the
// protocol, types/100 and types/create for results, version for spec 0.3.0
// to 1.1.0; delegation runs the IPAM plugin as the library's invoke does,
// without invoke's OpenTelemetry imports, see delegate.go) and writes
// nothing else to stdout.
//
// # What it does
//
// ADD creates the bridge if missing (in the namespace the plugin runs in,
// the runtime's), a veth whose container end is created directly inside
// CNI_NETNS (no move) and whose host end, named "nsc" + a hash of (network,
// container, ifname), joins the bridge, then an address from the ipam
// object: "nsbox-range" (host-local's ranges and on-disk layout, under
// DefaultDataDir or "dataDir"), "nsbox-dhcp" (a lease from a DHCP server on
// the bridge's segment, held by a lease keeper the plugin starts itself) or
// any other IPAM plugin by delegation (ADD, DEL, CHECK, GC, STATUS). isGateway puts the
// gateway on the bridge, isDefaultGateway adds the default route, ipMasq
// adds an nftables masquerade rule (table "nsbox", chain
// "cni-postrouting") that goes with the network's last attachment. DEL is
// idempotent; CHECK compares the system with prevResult; GC removes every
// allocation, lease and veth of the network not in
// cni.dev/valid-attachments; STATUS answers 50 when an ADD cannot succeed.
// A prevResult is merged as the spec says, so nsbox can follow or precede
// the reference plugins (portmap, tuning, bandwidth, firewall) in a chain.
//
// # Deleting veths
//
// Unregistering a net device keeps the caller in the kernel for several
// RCU grace periods after the device has left the namespace's list
// (10-50 ms for one veth on a loaded host, about a second for a thousand
// bridge ports). DEL and GC therefore hand their one RTM_DELLINK to a
// forked child (csrc/cni_unlink.c) and return as soon as the links are no
// longer listed (/proc/thread-self/net/dev, which the kernel reads without the
// RTNL lock), or with the kernel's refusal, which the child reports as its
// exit status. The child finishes the teardown alone;
// a new link of the same name can be created at once, since creating one
// waits for the RTNL lock the teardown holds.
//
// # Errors
//
// Every failure is a CNI error object: 6 for JSON that does not decode, 7
// for a config that cannot work (a bridge name taken by another kind of
// link), 4 for a CNI_NETNS that is not a network namespace or a CNI_IFNAME
// already there, 11 (try again later) for an exhausted range or a DHCP
// server that does not answer, 50 from STATUS. A failed ADD leaves nothing
// behind.
//
// # Privileges
//
// CAP_NET_ADMIN in the runtime's namespace and in CNI_NETNS, CAP_SYS_ADMIN
// to open the DHCP client's packet socket inside CNI_NETNS, write access to
// the data and socket folders.
//
// # Debugging
//
// Set "log" in the config: one line per operation (and the keeper's DHCP
// events) goes there with the container id and the outcome. The keeper's
// socket, lock and pid file are in DefaultSocketDir (or "socketDir"); its
// records and dhcpclient lease files are in DATADIR/dhcp/.
// `ip -d link show master BR` lists attachments; `nft list table ip nsbox`
// shows the masquerade.
package cni
