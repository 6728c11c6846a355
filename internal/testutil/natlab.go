package testutil

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// NATLab is a host namespace holding a bridge (10.88.0.1/24) and a link to
// an outside namespace (host 192.168.88.1, outside 192.168.88.2) where an
// HTTP server (busybox httpd) listens on port 8081. The outside namespace
// has no route to the bridge's subnet, so a sandbox reaches the server only
// when the host namespace masquerades it. Everything is removed when t ends.
type NATLab struct {
	HostNS, OutsideNS string
	Bridge            string // in HostNS
	BridgeIP          string // 10.88.0.1
	HostOutsideIP     string // 192.168.88.1
	OutsideIP         string // 192.168.88.2
	ServerURL         string // http://192.168.88.2:8081/
	Token             string // the body of the server's index.html
	httpd             *Proc
}

// NewNATLab builds the lab and starts the outside server.
func NewNATLab(t testing.TB) *NATLab {
	t.Helper()
	RequirePriv(t)
	RequireTool(t, "busybox")
	RequireTool(t, "curl")
	RequireTool(t, "nft")
	lab := &NATLab{HostNS: NewNetns(t), OutsideNS: NewNetns(t), Bridge: "br0",
		BridgeIP: "10.88.0.1", HostOutsideIP: "192.168.88.1", OutsideIP: "192.168.88.2",
		Token: UniqueName("tok")}
	lab.ServerURL = "http://" + lab.OutsideIP + ":8081/"
	h, o := lab.HostNS, lab.OutsideNS
	Cmd(t, "ip", "-n", h, "link", "add", lab.Bridge, "type", "bridge")
	Cmd(t, "ip", "-n", h, "addr", "add", lab.BridgeIP+"/24", "dev", lab.Bridge)
	Cmd(t, "ip", "-n", h, "link", "set", lab.Bridge, "up")
	Cmd(t, "ip", "-n", h, "link", "add", "out0", "type", "veth", "peer", "name", "eth0", "netns", o)
	Cmd(t, "ip", "-n", h, "addr", "add", lab.HostOutsideIP+"/24", "dev", "out0")
	Cmd(t, "ip", "-n", h, "link", "set", "out0", "up")
	Cmd(t, "ip", "-n", o, "addr", "add", lab.OutsideIP+"/24", "dev", "eth0")
	Cmd(t, "ip", "-n", o, "link", "set", "eth0", "up")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(lab.Token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lab.httpd = StartProc(t, "ip", "netns", "exec", o, "busybox", "httpd", "-f", "-vv", "-p", "8081", "-h", dir)
	WaitTCPListen(t, o, 8081, lab.httpd)
	return lab
}

// ServerLog returns what the outside server logged (one "[::ffff:IP]:PORT:
// url:/" line per request).
func (lab *NATLab) ServerLog() string { return lab.httpd.Stderr.String() }

// AddSandbox creates a namespace with a veth on the bridge, address
// 10.88.0.N/24 and a default route through the bridge; removed when t ends.
func (lab *NATLab) AddSandbox(t testing.TB, n int) (ns, addr string) {
	t.Helper()
	ns = NewNetns(t)
	addr = fmt.Sprintf("10.88.0.%d", n)
	host := UniqueName("nlv")
	Cmd(t, "ip", "-n", lab.HostNS, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
	Cmd(t, "ip", "-n", lab.HostNS, "link", "set", host, "master", lab.Bridge, "up")
	Cmd(t, "ip", "-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
	Cmd(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	Cmd(t, "ip", "-n", ns, "route", "add", "default", "via", lab.BridgeIP)
	return ns, addr
}

// Curl fetches url from inside ns (2 s limit) and returns the body.
func Curl(ns, url string) (string, error) {
	return CmdErr("ip", "netns", "exec", ns, "curl", "-sS", "--noproxy", "*", "-m", "2", url)
}

// NftRules returns the comments of every rule in ns's ruleset and the
// names of its tables, as `nft -j list ruleset` shows them.
func NftRules(t testing.TB, ns string) (tables []string, comments []string) {
	t.Helper()
	out := Cmd(t, "ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset")
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j list ruleset in %s: decode %q: %v", ns, out, err)
	}
	for _, obj := range doc.Nftables {
		if raw, ok := obj["table"]; ok {
			var tb struct{ Family, Name string }
			if err := json.Unmarshal(raw, &tb); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, tb.Family+" "+tb.Name)
		}
		if raw, ok := obj["rule"]; ok {
			var r struct{ Comment string }
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatal(err)
			}
			comments = append(comments, r.Comment)
		}
	}
	return tables, comments
}

// WaitTCPListen waits (up to 10 s) until something in ns listens on TCP
// port; it fails early if p exits.
func WaitTCPListen(t testing.TB, ns string, port int, p *Proc) {
	t.Helper()
	waitListen(t, ns, "tcp", port, p)
}
