// Package dhcpclient is a DHCPv4 client (RFC 2131) for an interface in any
// network namespace, built on github.com/insomniacslk/dhcp's dhcpv4 messages
// and nclient4's raw UDP conn.
//
// # States
//
// INIT -> SELECTING (DISCOVER, first acceptable OFFER) -> REQUESTING
// (REQUEST with the server id; ACK or NAK from that server only) -> BOUND
// -> RENEWING at T1 (REQUEST unicast to the server with ciaddr) ->
// REBINDING at T2 (the same, broadcast; any server may answer) -> at expiry
// the address is removed and the client starts over in INIT. A NAK in
// REQUESTING, RENEWING or REBINDING sends it back to INIT (after a backoff).
// With a lease file holding an unexpired lease the client starts in
// INIT-REBOOT (REQUEST for the old address, no server id).
//
// T1 and T2 come from options 58 and 59 when they are consistent, else 0.5
// and 0.875 of the lease. Retransmissions follow RFC 2131 4.1: the first
// after WithFirstRetry (4 s by default; labs use ~100 ms), doubling up to
// WithMaxRetry (64 s), each with a uniform jitter of a quarter of the first
// delay; in RENEWING and REBINDING half the time left, at least
// WithMinRenewRetry (60 s). The random 1 to 10 s wait before the first
// DISCOVER that RFC 2131 suggests is left out: namespaces boot one by one.
//
// # Validation
//
// Every reply is checked before anything in it is used: it must be a
// BOOTREPLY with our xid and chaddr and the expected message type, carry a
// server identifier that is not 0.0.0.0, and, for OFFER and ACK, a usable
// yiaddr that is neither the network nor the broadcast address of a
// contiguous mask of /1 to /30 (a missing mask means the classful one), a
// lease time that is not 0 (0xffffffff means infinite: no timers, a
// permanent address), a router inside the subnet, well-formed classless
// routes, and option lengths that match their types. A reply that fails is
// ignored with a logged reason (*RejectError) and the client keeps waiting.
// Datagrams over 1500 bytes are refused as oversized.
//
// # Applying
//
// The Applier interface puts a lease into effect; RtnlApplier does it over
// rtnl: the address with its prefix and the remaining lease as valid and
// preferred lifetime (the kernel drops it if nsbox dies), the default route
// via option 3 or the classless routes of option 121 instead (RFC 3442), the
// MTU of option 26, and the DNS servers of option 6 in
// /etc/netns/NAME/resolv.conf for a named namespace. The lease is saved to a
// JSON lease file, atomically, after each bind.
//
// # Namespaces and privileges
//
// Listen creates the packet socket (AF_PACKET, SOCK_DGRAM, ETH_P_IP, with a
// classic BPF filter that passes only UDP to port 68, so the broadcasts of
// other clients never reach user space) on a locked OS thread inside the
// target namespace through netns.Do (nclient4 frames and unframes the UDP
// datagrams); the socket
// stays bound to that namespace's interface after the thread leaves, and no
// Go thread is left in the namespace. Unicast REQUESTs and RELEASEs use a
// short-lived UDP socket created the same way. All of this needs CAP_NET_RAW
// and CAP_NET_ADMIN in the namespace (root in practice). The state machine
// itself (Client with a fake Conn, Applier and Clock) needs nothing.
//
// # Debugging
//
// WithLogf receives a line per state change and per rejected reply, with the
// reason. WithStateHook reports states. The lease file is plain JSON. To watch
// the exchange: ip netns exec NS tcpdump -ni DEV -vv port 67 or port 68.
package dhcpclient
