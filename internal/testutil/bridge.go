package testutil

import (
	"encoding/json"
	"strings"
	"testing"
)

// This file holds the observers of the bridge tests: iproute2's `bridge`
// and bridge-utils' `brctl`, run inside a test's namespace.

// Brctl runs `brctl ARGS...` inside the named namespace (ip netns exec, which
// also mounts that namespace's /sys for brctl) with LC_ALL=C, so that its
// sorting is byte order, and returns its stdout.
func Brctl(t testing.TB, ns string, args ...string) string {
	t.Helper()
	RequireTool(t, "brctl")
	return Cmd(t, "ip", append([]string{"netns", "exec", ns, "env", "LC_ALL=C", "brctl"}, args...)...)
}

// BridgePort is one object of `bridge -j link`.
type BridgePort struct {
	Ifindex  int    `json:"ifindex"`
	Ifname   string `json:"ifname"`
	Master   string `json:"master"`
	State    string `json:"state"`
	Priority int    `json:"priority"`
	Cost     int    `json:"cost"`
}

// BridgeLinks returns `bridge -j link` of the namespace: every bridge port.
func BridgeLinks(t testing.TB, ns string) []BridgePort {
	t.Helper()
	RequireTool(t, "bridge")
	var v []BridgePort
	decodeJSON(t, Cmd(t, "bridge", "-n", ns, "-j", "link"), &v)
	return v
}

// FDBEntry is one object of `bridge -j fdb`.
type FDBEntry struct {
	MAC    string   `json:"mac"`
	Ifname string   `json:"ifname"`
	Master string   `json:"master"`
	State  string   `json:"state"`
	Flags  []string `json:"flags"`
	VLAN   int      `json:"vlan"`
}

// BridgeFDB returns `bridge -j fdb show br BR` of the namespace.
func BridgeFDB(t testing.TB, ns, br string) []FDBEntry {
	t.Helper()
	RequireTool(t, "bridge")
	var v []FDBEntry
	decodeJSON(t, Cmd(t, "bridge", "-n", ns, "-j", "fdb", "show", "br", br), &v)
	return v
}

// LinkDetails is the part of `ip -j -d link show DEV` the bridge tests read.
type LinkDetails struct {
	Ifindex  int      `json:"ifindex"`
	Ifname   string   `json:"ifname"`
	Flags    []string `json:"flags"`
	Master   string   `json:"master"`
	Address  string   `json:"address"`
	Linkinfo struct {
		InfoKind      string         `json:"info_kind"`
		InfoData      map[string]any `json:"info_data"`
		InfoSlaveKind string         `json:"info_slave_kind"`
	} `json:"linkinfo"`
}

// LinkDetail returns `ip -j -d link show DEV` in the namespace, or nil when
// the device does not exist.
func LinkDetail(t testing.TB, ns, dev string) *LinkDetails {
	t.Helper()
	out, err := CmdErr("ip", "-n", ns, "-j", "-d", "link", "show", "dev", dev)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil
		}
		t.Fatalf("ip -n %s -j -d link show dev %s: %v", ns, dev, err)
	}
	var v []LinkDetails
	decodeJSON(t, out, &v)
	if len(v) != 1 {
		t.Fatalf("ip -j -d link show dev %s: %d objects", dev, len(v))
	}
	return &v[0]
}

// VethInto creates the veth pair name/peer with iproute2: name in namespace
// ns and peer directly in namespace peerNS (no later move). Both go away
// with their namespaces.
func VethInto(t testing.TB, ns, name, peerNS, peer string) {
	t.Helper()
	Cmd(t, "ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", peer, "netns", peerNS)
}

func decodeJSON(t testing.TB, out string, v any) {
	t.Helper()
	if strings.TrimSpace(out) == "" {
		out = "[]"
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
}
