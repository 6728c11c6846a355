package cni_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/version"

	"github.com/nsbox/nsbox/internal/testutil"
)

// TestVersions: VERSION lists 0.3.0 to 1.1.0, and ADD/CHECK/DEL answer in
// the config's own version, as the library parses it.
func TestVersions(t *testing.T) {
	l := newLab(t)
	out, code := l.plugin("VERSION", []byte(`{"cniVersion":"1.1.0"}`), "", "", "")
	if code != 0 {
		t.Fatalf("VERSION: exit %d %s", code, out)
	}
	info, err := (&version.PluginDecoder{}).Decode([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}
	if !slices.Equal(info.SupportedVersions(), want) {
		t.Errorf("supported %v, want %v", info.SupportedVersions(), want)
	}
	for _, v := range want {
		t.Run(v, func(t *testing.T) {
			ctr := testutil.NewNetns(t)
			c := l.nsboxConf(l.rangeIPAM(), map[string]any{"isDefaultGateway": true})
			c["cniVersion"], c["name"] = v, l.Net
			conf, _ := json.Marshal(c)
			id := "ver-" + strings.ReplaceAll(v, ".", "")
			out, code := l.plugin("ADD", conf, id, "/run/netns/"+ctr, "eth0")
			if code != 0 {
				t.Fatalf("ADD %s: exit %d %s", v, code, out)
			}
			res, err := version.NewResult(v, []byte(out))
			if err != nil {
				t.Fatalf("result of %s: %v (%s)", v, err, out)
			}
			if res.Version() != v && !(v == "0.3.0" && res.Version() == "0.3.1") {
				t.Errorf("result version %s, want %s", res.Version(), v)
			}
			var raw map[string]any
			_ = json.Unmarshal([]byte(out), &raw)
			if raw["cniVersion"] != v {
				t.Errorf("cniVersion %v in the result, want %s", raw["cniVersion"], v)
			}
			addr := l.allocationOf(id)
			if got := testutil.IPv4Addrs(t, ctr, "eth0"); addr == "" || !hasKey(got, addr+"/24") {
				t.Errorf("eth0 %v, allocation %q", got, addr)
			}
			if v != "0.3.0" && v != "0.3.1" {
				c["prevResult"] = raw
				conf, _ := json.Marshal(c)
				if out, code := l.plugin("CHECK", conf, id, "/run/netns/"+ctr, "eth0"); code != 0 {
					t.Errorf("CHECK %s: exit %d %s", v, code, out)
				}
				delete(c, "prevResult")
			}
			conf, _ = json.Marshal(c)
			for i := 0; i < 2; i++ {
				if out, code := l.plugin("DEL", conf, id, "/run/netns/"+ctr, "eth0"); code != 0 || out != "" {
					t.Errorf("DEL %s #%d: exit %d %q", v, i+1, code, out)
				}
			}
			if l.allocationOf(id) != "" {
				t.Errorf("allocation of %s left", id)
			}
		})
	}
}

// TestPromisc: promiscMode sets the bridge's flag.
func TestPromisc(t *testing.T) {
	l := newLab(t)
	l.writeConflist("1.1.0", l.nsboxConf(l.rangeIPAM(), map[string]any{"promiscMode": true}))
	ctr := testutil.NewNetns(t)
	l.cni("add", ctr)
	br := link(t, l.RT, l.Bridge)
	if br == nil || !slices.Contains(br.Flags, "PROMISC") {
		t.Errorf("bridge flags %+v, want PROMISC", br)
	}
	l.cni("del", ctr)
}

// vlanFiltering reports whether the kernel's bridges can filter VLANs.
func vlanFiltering(t *testing.T) bool {
	ns := testutil.NewNetns(t)
	testutil.Cmd(t, "ip", "-n", ns, "link", "add", "b0", "type", "bridge")
	_, err := testutil.CmdErr("ip", "-n", ns, "link", "set", "b0", "type", "bridge", "vlan_filtering", "1")
	return err == nil
}

// TestVlan: vlan makes the host end an untagged PVID member of that VLAN on
// a VLAN-filtering bridge. A kernel without VLAN filtering gets a code 7
// error naming the missing option, and nothing is left.
func TestVlan(t *testing.T) {
	l := newLab(t)
	l.writeConflist("1.1.0", l.nsboxConf(l.rangeIPAM(), map[string]any{"vlan": 42}))
	ctr := testutil.NewNetns(t)
	if !vlanFiltering(t) {
		out, errs, code := l.run(nil, nil, l.cnitool, "add", l.Net, "/run/netns/"+ctr)
		if code == 0 || !strings.Contains(out+errs, "no bridge VLAN filtering") {
			t.Errorf("add with vlan on a kernel without VLAN filtering: exit %d %q %q", code, out, errs)
		}
		if len(l.allocations()) != 0 || link(t, l.RT, l.Bridge) != nil || link(t, ctr, "eth0") != nil {
			t.Errorf("left after the failed add: %v", l.allocations())
		}
		return
	}
	res := parseResult(t, l.cni("add", ctr))
	hostIf := res.Interfaces[1].Name
	var d []struct {
		Linkinfo struct {
			InfoData struct {
				VlanFiltering int `json:"vlan_filtering"`
			} `json:"info_data"`
		} `json:"linkinfo"`
	}
	testutil.IPJSON(t, &d, "-n", l.RT, "-d", "link", "show", l.Bridge)
	if len(d) != 1 || d[0].Linkinfo.InfoData.VlanFiltering != 1 {
		t.Errorf("vlan_filtering %+v, want 1", d)
	}
	var vl []struct {
		Ifname string `json:"ifname"`
		Vlans  []struct {
			Vlan  int      `json:"vlan"`
			Flags []string `json:"flags"`
		} `json:"vlans"`
	}
	out := testutil.Cmd(t, "bridge", "-n", l.RT, "-j", "vlan", "show", "dev", hostIf)
	if err := json.Unmarshal([]byte(out), &vl); err != nil || len(vl) != 1 {
		t.Fatalf("bridge -j vlan show dev %s: %q %v", hostIf, out, err)
	}
	if len(vl[0].Vlans) != 1 || vl[0].Vlans[0].Vlan != 42 || !slices.Contains(vl[0].Vlans[0].Flags, "PVID") || !slices.Contains(vl[0].Vlans[0].Flags, "Egress Untagged") {
		t.Errorf("vlans of %s: %+v, want only 42 PVID untagged", hostIf, vl[0].Vlans)
	}
	l.cni("del", ctr)
}

func hasKey(m map[string]int64, k string) bool { _, ok := m[k]; return ok }

// allocationOf returns the address held by container id, "" if none.
func (l *lab) allocationOf(id string) string {
	for a, owner := range l.allocations() {
		if strings.HasPrefix(owner, id+"\r\n") {
			return a
		}
	}
	return ""
}
