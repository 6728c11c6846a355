package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestLinkAddBridgeOptionsLikeIP creates bridges with ip link's bridge
// options through ip in one namespace and through nsbox in another and
// compares what ip -d -j shows of both; an option the kernel refuses
// (vlan_filtering without CONFIG_BRIDGE_VLAN_FILTERING) must fail for
// both, and leave nothing.
func TestLinkAddBridgeOptionsLikeIP(t *testing.T) {
	testutil.RequirePriv(t)
	theirs, ours := testutil.NewNetns(t), testutil.NewNetns(t)
	keys := []string{"forward_delay", "hello_time", "max_age", "ageing_time", "stp_state", "priority", "vlan_filtering"}
	info := func(ns, dev string) map[string]any {
		var links []struct {
			Linkinfo struct {
				InfoData map[string]any `json:"info_data"`
			} `json:"linkinfo"`
		}
		testutil.IPJSON(t, &links, "-n", ns, "-d", "link", "show", "dev", dev)
		out := map[string]any{}
		for _, k := range keys {
			out[k] = links[0].Linkinfo.InfoData[k]
		}
		return out
	}
	for i, opts := range []string{
		"",
		"forward_delay 400 stp_state 1 hello_time 300 max_age 1000 ageing_time 1200 priority 100",
		"stp_state 0 forward_delay 100",
		"vlan_filtering 1",
		"vlan_filtering 0 priority 7",
	} {
		dev := "bo" + string(rune('a'+i))
		ipArgs := append([]string{"-n", theirs, "link", "add", dev, "type", "bridge"}, strings.Fields(opts)...)
		_, ipErr := testutil.CmdErr("ip", ipArgs...)
		code, _, errs := nlRun(t, "", append([]string{"-n", ours, "link", "add", dev, "type", "bridge"}, strings.Fields(opts)...)...)
		if (ipErr == nil) != (code == 0) {
			t.Errorf("type bridge %s: ip err %v, nsbox exit %d %q", opts, ipErr, code, errs)
			continue
		}
		if ipErr != nil {
			if _, err := testutil.CmdErr("ip", "-n", ours, "link", "show", "dev", dev); err == nil {
				t.Errorf("type bridge %s: refused, yet %s exists", opts, dev)
			}
			if strings.Contains(opts, "vlan_filtering") && !strings.Contains(errs, "CONFIG_BRIDGE_VLAN_FILTERING") {
				t.Errorf("type bridge %s: %q does not say why", opts, errs)
			}
			continue
		}
		want, got := info(theirs, dev), info(ours, dev)
		w, _ := json.Marshal(want)
		g, _ := json.Marshal(got)
		if string(w) != string(g) {
			t.Errorf("type bridge %s:\nnsbox: %s\nip:    %s", opts, g, w)
		}
	}
	for _, tc := range []struct{ args, msg string }{
		{"bx type bridge forward_delay", "forward_delay needs a value"},
		{"bx type bridge forward_delay x", `invalid forward_delay "x"`},
		{"bx type bridge vlan_filtering 2", `invalid vlan_filtering "2"`},
		{"bx type bridge mtu 1400", `unknown bridge option "mtu"`},
	} {
		code, _, errs := nlRun(t, "", append([]string{"-n", ours, "link", "add"}, strings.Fields(tc.args)...)...)
		if code != 2 || !strings.Contains(errs, tc.msg) {
			t.Errorf("link add %s: exit %d %q, want 2 and %q", tc.args, code, errs, tc.msg)
		}
	}
}
