// Package shellpeer is the shell-script peer of the storm benchmarks
// (bench/sandbox's Storm, bench/pool's PoolStorm): one networked sandbox
// the way a shell script builds it with ip, busybox udhcpc and unshare.
package shellpeer

import (
	"fmt"
	"os"
	"path/filepath"
)

// script is one sandbox: sandbox.sh LAB SB HOSTIF DIR [PAYLOAD]. It makes
// network namespace SB, a veth from LAB's bridge br0 into it, leases an
// address by DHCP (DIR/udhcpc.sh configures it) and runs PAYLOAD
// (/bin/true if none) in new IPC, PID and mount namespaces with a fresh
// /proc; the namespace is deleted when the script ends.
const script = `set -e
lab=$1; sb=$2; h=$3; dir=$4; payload=${5:-/bin/true}
ip netns add "$sb"
trap 'ip netns del "$sb" 2>/dev/null' EXIT
ip -n "$lab" link add "$h" type veth peer name eth0 netns "$sb"
ip -n "$lab" link set "$h" master br0 up
ip -n "$sb" link set lo up
ip -n "$sb" link set eth0 up
ip netns exec "$sb" busybox udhcpc -f -q -n -T 1 -t 10 -i eth0 -s "$dir/udhcpc.sh" >/dev/null 2>&1
ip netns exec "$sb" unshare --ipc --pid --mount --fork --mount-proc "$payload"
`

// udhcpc configures the lease it is given, as a dhclient-script would.
const udhcpc = `#!/bin/sh
case "$1" in
bound|renew) ip addr add "$ip/$mask" dev "$interface"; [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface" ;;
esac
exit 0
`

// Write writes the script (sandbox.sh) and its udhcpc hook into dir and
// returns the script's path, to run as `sh PATH LAB SB HOSTIF DIR
// [PAYLOAD]`.
func Write(dir string) (string, error) {
	for name, body := range map[string]string{"udhcpc.sh": udhcpc, "sandbox.sh": script} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			return "", fmt.Errorf("shellpeer: write %s: %w", name, err)
		}
	}
	return filepath.Join(dir, "sandbox.sh"), nil
}
