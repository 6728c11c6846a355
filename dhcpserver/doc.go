// Package dhcpserver is a small embedded DHCPv4 server for labs and tests:
// one pool range inside the server's subnet, a router, DNS servers and a
// lease time, with leases kept in memory and persisted to a JSON file
// (written atomically, reloaded at start).
//
// It answers DISCOVER (OFFER), REQUEST (ACK or NAK), RELEASE, DECLINE and
// INFORM over github.com/insomniacslk/dhcp's dhcpv4 messages and server4's
// serving loop. A client, named by its client identifier (option 61) or else
// its hardware address, gets the same address back while its lease lives and
// after it expires, as long as no other client took it. A REQUEST for an
// address that is not the client's is answered with a NAK.
//
// # Scope
//
// The Server's decision logic (Handle) is pure: it takes a request and gives
// the reply, so tests drive it without sockets (over a socketpair or
// directly) and the fuzzer feeds it arbitrary bytes. Serve runs it on a
// net.PacketConn; ListenUDP opens that socket inside a network namespace.
// Relayed requests (giaddr set) are answered to the relay; a client that
// has no address and did not set the broadcast flag gets its OFFER and ACK
// unicast to yiaddr at its hardware address (RFC 2131 4.1, as dnsmasq does:
// the conn of ListenUDP seeds the neighbour entry with SIOCSARP), so that
// hundreds of clients on one bridge do not flood each other; everything
// else to a client without an address (NAK, broadcast flag set) is
// broadcast. Leases are written on every change, without fsync (atomic by
// rename, not durable across a power cut). There is no failover, no static
// host table and no DHCPv6.
//
// # Privileges
//
// ListenUDP binds UDP port 67 to a device (SO_BINDTODEVICE) inside the
// namespace: it needs CAP_NET_BIND_SERVICE and CAP_NET_RAW, in practice root.
// The socket is created on a locked OS thread that entered the namespace
// (netns.Do); no Go thread stays there, and the socket keeps working in that
// namespace afterwards.
//
// # Debugging
//
// WithLogf receives one line per decision (offer, ack, nak with its reason,
// release, decline, ignored request and why). The lease file is plain JSON.
// To watch the traffic: ip netns exec NS tcpdump -ni DEV port 67 or port 68.
package dhcpserver
