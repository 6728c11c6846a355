#!/usr/bin/env bash
# The walkthrough of shared/seed-linux-namespaces.txt, every line performed with
# nsbox alone, on one machine. Namespaces play the host ("HOST"), ns1 and the
# LAN (a bridge-side DHCP server, nsbox dhcpd), so the machine's own eth0,
# addresses, routes and DNS are never touched. Needs root.
#
#   NSBOX=bin/nsbox examples/walkthrough.sh
#
# WALKTHROUGH_TAG names the namespaces (wt-host-TAG, wt-ns1-TAG, wt-lan-TAG);
# WALKTHROUGH_KEEP=DIR keeps everything for inspection and writes the DHCP
# server's pid to DIR/dhcpd.pid (the caller then removes it all).
#
# Each step prints the walkthrough's command, then nsbox's, then its output.
# Everything it made is removed on exit, even after a failure.
set -euo pipefail

NSBOX=${NSBOX:-bin/nsbox}
tag=${WALKTHROUGH_TAG:-$$}
HOST=wt-host-$tag # plays the walkthrough's host (root) namespace
NS1=wt-ns1-$tag   # the walkthrough's ns1
LAN=wt-lan-$tag   # plays the LAN and its DHCP server behind eth0
# Under the test (WALKTHROUGH_KEEP) the files go into the test's folder,
# which outlives the script (dhcpd still writes there) and the test removes.
tmp=${WALKTHROUGH_KEEP:-$(mktemp -d)}
dhcpd_pid=

cleanup() {
	set +e
	if [ -n "${WALKTHROUGH_KEEP:-}" ]; then
		# A test inspects what is left, then removes it itself.
		[ -n "$dhcpd_pid" ] && echo "$dhcpd_pid" >"$WALKTHROUGH_KEEP/dhcpd.pid"
		return
	fi
	if [ -n "$dhcpd_pid" ]; then
		kill "$dhcpd_pid" 2>/dev/null
		wait "$dhcpd_pid" 2>/dev/null
	fi
	for ns in "$NS1" "$HOST" "$LAN"; do
		"$NSBOX" netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

step() { # step "walkthrough command" nsbox-args...
	local orig=$1
	shift
	printf '\n### walkthrough: %s\n### nsbox:       nsbox %s\n' "$orig" "$*"
	"$NSBOX" "$@"
}

step "./ns   (clone IPC+PID+NS, mount /proc, become nobody, exec bash)" \
	run --ipc --pid --mount --no-init --uid nobody --gid nogroup -- /bin/bash -c 'id; ps auxw; exit 0'

step "ip netns add ns1" netns add "$HOST"
step "ip netns add ns1" netns add "$NS1"
step "ip netns list" netns list

step "ip link list" -n "$HOST" link list
step "ip link add veth0 type veth peer name veth1" -n "$HOST" link add veth0 type veth peer name veth1
step "ip link list" -n "$HOST" link list
step "ip link set veth1 netns ns1" -n "$HOST" link set veth1 netns "$NS1"
step "ip netns exec ns1 ip link list" -n "$NS1" link list

step "ifconfig veth0 192.168.5.5/24" -n "$HOST" addr add 192.168.5.5/24 dev veth0
step "ifconfig veth0 up" -n "$HOST" link set veth0 up
step "ip netns exec ns1 ifconfig veth1 192.168.5.10/24 up" -n "$NS1" addr add 192.168.5.10/24 dev veth1
step "(up)" -n "$NS1" link set veth1 up
step "ip addr list" -n "$HOST" addr list
step "ip netns exec ns1 ip addr list" -n "$NS1" addr list
step "ip route list" -n "$HOST" route list
step "ip netns exec ns1 ip route list" -n "$NS1" route list
step "ip netns exec ns1 ping 192.168.5.5" netns exec "$NS1" -- ping -c 1 -W 2 192.168.5.5

# The LAN behind eth0: a namespace with a DHCP server, joined to HOST by a veth
# whose HOST end is called eth0 (created there directly).
step "(the LAN: a namespace with a DHCP server)" netns add "$LAN"
step "(eth0 to the LAN)" -n "$LAN" link add lan0 type veth peer name eth0 netns "$HOST"
step "(LAN address)" -n "$LAN" addr add 192.168.3.1/24 dev lan0
step "(LAN up)" -n "$LAN" link set lan0 up
printf '\n### (LAN DHCP server) nsbox -n %s dhcpd lan0 --range 192.168.3.100-192.168.3.200 --router 192.168.3.1\n' "$LAN"
"$NSBOX" -n "$LAN" dhcpd lan0 --range 192.168.3.100-192.168.3.200 --router 192.168.3.1 \
	--lease-time 10m --lease-file "$tmp/dhcpd.leases" >"${WALKTHROUGH_KEEP:-$tmp}/dhcpd.log" 2>&1 &
dhcpd_pid=$!

step "brctl addbr br0" -n "$HOST" bridge add br0
step "brctl addif br0 eth0" -n "$HOST" bridge addif br0 eth0
step "brctl addif br0 veth0" -n "$HOST" bridge addif br0 veth0
step "ifconfig eth0 0.0.0.0" -n "$HOST" addr flush dev eth0
step "ifconfig veth0 0.0.0.0" -n "$HOST" addr flush dev veth0
step "(eth0 up)" -n "$HOST" link set eth0 up
step "(br0 up)" -n "$HOST" link set br0 up
step "brctl show" -n "$HOST" bridge show
step "dhclient br0" -n "$HOST" dhcp br0 --once --timeout 20s --lease-file "$tmp/br0.lease"
step "ip addr list br0" -n "$HOST" addr list dev br0
step "(ifconfig veth1 0.0.0.0)" -n "$NS1" addr flush dev veth1
step "ip netns exec ns1 dhclient veth1" -n "$NS1" dhcp veth1 --once --timeout 20s --lease-file "$tmp/veth1.lease"
step "ip netns exec ns1 ip addr list" -n "$NS1" addr list
printf '\nwalkthrough complete\n'
