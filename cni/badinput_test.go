package cni_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestBadInput: each bad input gives a CNI error object on stdout with the
// spec's code and a message naming the problem, exit status 1, and leaves
// no veth, allocation, lease or rule behind.
func TestBadInput(t *testing.T) {
	l := newLab(t)
	ctr := testutil.NewNetns(t)
	good := func(extra map[string]any, ipam map[string]any) []byte {
		c := l.nsboxConf(ipam, extra)
		c["cniVersion"], c["name"] = "1.1.0", l.Net
		b, _ := json.Marshal(c)
		return b
	}
	notBridge := testutil.UniqueName("nbr")
	testutil.Cmd(t, "ip", "-n", l.RT, "link", "add", notBridge, "type", "veth", "peer", "name", notBridge+"p")
	taken := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", taken, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	tiny := l.rangeIPAM()
	tiny["rangeStart"], tiny["rangeEnd"] = l.Subnet+".10", l.Subnet+".10"
	// A DHCP network whose bridge has no server at all.
	silent := map[string]any{"type": "nsbox-dhcp", "dataDir": l.DataDir, "socketDir": l.SockDir, "timeout": "2s"}

	cases := []struct {
		name    string
		conf    []byte
		netns   string // "" leaves CNI_NETNS unset
		code    uint
		msg     string
		prepare func()
	}{
		{name: "malformed json", conf: []byte(`{"cniVersion":"1.1.0","name":"x","type":"nsbox",`), netns: "/run/netns/" + ctr, code: types.ErrDecodingFailure, msg: "unmarshal"},
		{name: "field of the wrong type", conf: good(map[string]any{"mtu": "big"}, l.rangeIPAM()), netns: "/run/netns/" + ctr, code: types.ErrDecodingFailure, msg: "mtu"},
		{name: "unknown ipam type", conf: good(nil, map[string]any{"type": "no-such-ipam"}), netns: "/run/netns/" + ctr, code: types.ErrInvalidNetworkConfig, msg: "no-such-ipam"},
		{name: "bad subnet", conf: good(nil, map[string]any{"type": "nsbox-range", "subnet": "10.1.2.0/33"}), netns: "/run/netns/" + ctr, code: types.ErrInvalidNetworkConfig, msg: "subnet"},
		{name: "missing CNI_NETNS", conf: good(nil, l.rangeIPAM()), netns: "", code: types.ErrInvalidEnvironmentVariables, msg: "CNI_NETNS"},
		{name: "non-existent CNI_NETNS", conf: good(nil, l.rangeIPAM()), netns: "/run/netns/nsbox-no-such-ns", code: types.ErrInvalidEnvironmentVariables, msg: "nsbox-no-such-ns"},
		{name: "interface name in use", conf: good(nil, l.rangeIPAM()), netns: "/run/netns/" + taken, code: types.ErrInvalidEnvironmentVariables, msg: "eth0 already exists"},
		{name: "bridge name is a veth", conf: good(map[string]any{"bridge": notBridge}, l.rangeIPAM()), netns: "/run/netns/" + ctr, code: types.ErrInvalidNetworkConfig, msg: "not a bridge"},
		{name: "exhausted range", conf: good(nil, tiny), netns: "/run/netns/" + ctr, code: types.ErrTryAgainLater, msg: "no free address",
			prepare: func() {
				// The only address is held by another container.
				dir := filepath.Join(l.DataDir, l.Net)
				os.MkdirAll(dir, 0o755)
				os.WriteFile(filepath.Join(dir, l.Subnet+".10"), []byte("other\r\neth0"), 0o600)
			}},
		{name: "dhcp server never answers", conf: good(nil, silent), netns: "/run/netns/" + ctr, code: types.ErrTryAgainLater, msg: "no lease"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.prepare != nil {
				c.prepare()
			}
			before := l.allocations()
			out, code := l.plugin("ADD", c.conf, "bad-"+strings.ReplaceAll(c.name, " ", "-"), c.netns, "eth0")
			if code != 1 {
				t.Errorf("exit %d, want 1 (stdout %q)", code, out)
			}
			e := cniError(t, out)
			if e.Code != c.code || !strings.Contains(e.Msg+e.Details, c.msg) {
				t.Errorf("error %d %q (%q), want code %d mentioning %q", e.Code, e.Msg, e.Details, c.code, c.msg)
			}
			if strings.Count(strings.TrimSpace(out), "\n") > 0 && !json.Valid([]byte(out)) {
				t.Errorf("stdout is more than the error object: %q", out)
			}
			// Nothing left: no nsbox veth anywhere, no new allocation,
			// no masquerade, no lease record.
			for _, lk := range links(t, l.RT) {
				if strings.HasPrefix(lk.Ifname, "nsc") {
					t.Errorf("veth %s left in the runtime namespace", lk.Ifname)
				}
			}
			if in := link(t, ctr, "eth0"); in != nil {
				t.Errorf("eth0 left in the container namespace")
			}
			if after := l.allocations(); len(after) != len(before) {
				t.Errorf("allocations %v, before %v", after, before)
			}
			if r := nftRules(t, l.RT); len(r) != 0 {
				t.Errorf("nft rules left: %v", r)
			}
			if ents, _ := os.ReadDir(filepath.Join(l.DataDir, "dhcp")); len(ents) != 0 {
				t.Errorf("lease records left: %v", ents)
			}
			// The runtime's DEL of the failed ADD succeeds (when the
			// config itself is readable) and changes nothing.
			if c.code != types.ErrDecodingFailure && c.code != types.ErrInvalidNetworkConfig {
				if out, code := l.plugin("DEL", c.conf, "bad-"+strings.ReplaceAll(c.name, " ", "-"), c.netns, "eth0"); code != 0 {
					t.Errorf("DEL after the failed ADD: exit %d %s", code, out)
				}
			}
		})
	}
	// The taken namespace keeps its own eth0: the failed ADD did not
	// delete a stranger's link.
	if link(t, taken, "eth0") == nil {
		t.Errorf("the pre-existing eth0 of %s was removed", taken)
	}
	// A bridge the failed ADDs created is gone too (only notBridge and lo).
	if br := link(t, l.RT, l.Bridge); br != nil {
		t.Errorf("bridge %s created by failed ADDs was left", l.Bridge)
	}
}

// TestStatusUnavailable: STATUS answers 50 when the range is full.
func TestStatusUnavailable(t *testing.T) {
	l := newLab(t)
	ipam := l.rangeIPAM()
	ipam["rangeStart"], ipam["rangeEnd"] = l.Subnet+".10", l.Subnet+".10"
	l.writeConflist("1.1.0", l.nsboxConf(ipam, nil))
	ctr := testutil.NewNetns(t)
	l.cni("status", ctr)
	l.cni("add", ctr)
	out, errs, code := l.run(nil, nil, l.cnitool, "status", l.Net, "/run/netns/"+ctr)
	if code == 0 || !strings.Contains(out+errs, "no free address") {
		t.Errorf("status of a full range: exit %d %q %q, want a failure naming the full range", code, out, errs)
	}
	conf, _ := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": l.Net, "type": "nsbox", "bridge": l.Bridge, "ipam": ipam})
	out, _, code = l.run(conf, []string{"CNI_COMMAND=STATUS"}, l.Plugin)
	if e := cniError(t, out); code != 1 || e.Code != types.ErrPluginNotAvailable {
		t.Errorf("STATUS: exit %d, error %+v; want 1 and code 50", code, e)
	}
	l.cni("del", ctr)
}
