package cni

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// ensureBridge returns the bridge, creating it (up, with the MTU, VLAN
// filtering and promiscuous mode the config asks for) when missing. created
// says whether this call made it. A link of that name that is not a bridge
// is an error and is left alone.
func ensureBridge(ctx context.Context, c *rtnl.Conn, n *NetConf) (br rtnl.Link, created bool, err error) {
	br, err = c.LinkByName(ctx, n.Bridge)
	if errors.Is(err, unix.ENODEV) {
		err = c.AddBridge(ctx, n.Bridge)
		switch {
		case err == nil:
			created = true
		case errors.Is(err, unix.EEXIST): // a concurrent ADD made it
		default:
			return br, false, fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		br, err = c.LinkByName(ctx, n.Bridge)
	}
	if err != nil {
		return br, created, fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	if br.Kind != "bridge" {
		kind := br.Kind
		if kind == "" {
			kind = "a device without a kind"
		}
		return br, false, &notBridgeError{name: n.Bridge, kind: kind}
	}
	if created {
		// A bridge whose MAC was never set takes the lowest MAC of its
		// ports and changes it as ports come and go; the containers' ARP
		// caches then point at a MAC that is gone, and their unicast to
		// the bridge (a DHCP RELEASE or renewal, the gateway) is lost. A
		// MAC set once stays.
		mac := make(net.HardwareAddr, 6)
		if _, err := rand.Read(mac); err != nil {
			return br, created, err
		}
		mac[0] = mac[0]&0xfe | 0x02 // unicast, locally administered
		if err := c.SetHardwareAddr(ctx, n.Bridge, mac); err != nil {
			return br, created, fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
		br.HardwareAddr = mac
	}
	if n.MTU > 0 && created {
		if err := c.SetMTU(ctx, n.Bridge, uint32(n.MTU)); err != nil {
			return br, created, fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
	}
	if n.Vlan != 0 {
		if err := setVlanFiltering(ctx, c, br.Index); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) {
				return br, created, types.NewError(types.ErrInvalidNetworkConfig,
					fmt.Sprintf("vlan %d: this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)", n.Vlan), "bridge "+n.Bridge)
			}
			return br, created, fmt.Errorf("bridge %s: vlan filtering: %w", n.Bridge, err)
		}
	}
	if n.PromiscMode && br.RawFlags&unix.IFF_PROMISC == 0 {
		if err := setFlag(ctx, c, br.Index, unix.IFF_PROMISC); err != nil {
			return br, created, fmt.Errorf("bridge %s: promiscuous mode: %w", n.Bridge, err)
		}
	}
	if br.RawFlags&unix.IFF_UP == 0 {
		if err := c.SetUp(ctx, n.Bridge); err != nil {
			return br, created, fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
	}
	return br, created, nil
}

// notBridgeError is a bridge name taken by another kind of link.
type notBridgeError struct{ name, kind string }

func (e *notBridgeError) Error() string {
	return fmt.Sprintf("%s exists and is not a bridge (it is %s)", e.name, e.kind)
}

// ifinfomsg builds struct ifinfomsg followed by attrs.
func ifinfomsg(family uint8, index int, flags, change uint32, attrs []byte) []byte {
	b := make([]byte, unix.SizeofIfInfomsg, unix.SizeofIfInfomsg+len(attrs))
	b[0] = family
	binary.NativeEndian.PutUint32(b[4:8], uint32(int32(index)))
	binary.NativeEndian.PutUint32(b[8:12], flags)
	binary.NativeEndian.PutUint32(b[12:16], change)
	return append(b, attrs...)
}

// setFlag sets an IFF_* flag of a link.
func setFlag(ctx context.Context, c *rtnl.Conn, index int, flag uint32) error {
	_, err := c.Execute(ctx, unix.RTM_NEWLINK, netlink.Acknowledge, ifinfomsg(unix.AF_UNSPEC, index, flag, flag, nil))
	return err
}

// setVlanFiltering turns on IFLA_BR_VLAN_FILTERING of a bridge.
func setVlanFiltering(ctx context.Context, c *rtnl.Conn, index int) error {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(unix.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error {
		nae.String(unix.IFLA_INFO_KIND, "bridge")
		nae.Nested(unix.IFLA_INFO_DATA, func(dae *netlink.AttributeEncoder) error {
			dae.Uint8(unix.IFLA_BR_VLAN_FILTERING, 1)
			return nil
		})
		return nil
	})
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = c.Execute(ctx, unix.RTM_NEWLINK, netlink.Acknowledge, ifinfomsg(unix.AF_UNSPEC, index, 0, 0, attrs))
	return err
}

// setHairpin turns on hairpin mode (IFLA_BRPORT_MODE) of a bridge port, as
// `bridge link set dev DEV hairpin on` does.
func setHairpin(ctx context.Context, c *rtnl.Conn, index int) error {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(unix.IFLA_PROTINFO, func(nae *netlink.AttributeEncoder) error {
		nae.Uint8(unix.IFLA_BRPORT_MODE, 1)
		return nil
	})
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = c.Execute(ctx, unix.RTM_SETLINK, netlink.Acknowledge, ifinfomsg(unix.AF_BRIDGE, index, 0, 0, attrs))
	return err
}

// Bridge VLAN flags of linux/if_bridge.h.
const (
	bridgeVlanInfoPVID     = 0x2
	bridgeVlanInfoUntagged = 0x4
	iflaBridgeVlanInfo     = 2
)

// setPortVlan makes vid the untagged PVID of a bridge port and removes the
// default VLAN 1 from it, as `bridge vlan add dev DEV vid VID pvid untagged`
// and `bridge vlan del dev DEV vid 1` do.
func setPortVlan(ctx context.Context, c *rtnl.Conn, index int, vid uint16) error {
	vlan := func(flags, vid uint16) ([]byte, error) {
		ae := netlink.NewAttributeEncoder()
		ae.Nested(unix.IFLA_AF_SPEC, func(nae *netlink.AttributeEncoder) error {
			v := make([]byte, 4)
			binary.NativeEndian.PutUint16(v[0:2], flags)
			binary.NativeEndian.PutUint16(v[2:4], vid)
			nae.Bytes(iflaBridgeVlanInfo, v)
			return nil
		})
		return ae.Encode()
	}
	if vid != 1 {
		attrs, err := vlan(0, 1)
		if err != nil {
			return err
		}
		if _, err := c.Execute(ctx, unix.RTM_DELLINK, netlink.Acknowledge, ifinfomsg(unix.AF_BRIDGE, index, 0, 0, attrs)); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	attrs, err := vlan(bridgeVlanInfoPVID|bridgeVlanInfoUntagged, vid)
	if err != nil {
		return err
	}
	_, err = c.Execute(ctx, unix.RTM_SETLINK, netlink.Acknowledge, ifinfomsg(unix.AF_BRIDGE, index, 0, 0, attrs))
	return err
}

// bridgePorts returns the links whose master is the bridge and whose names
// start with prefix.
func bridgePorts(ctx context.Context, c *rtnl.Conn, bridgeIndex int, prefix string) ([]rtnl.Link, error) {
	links, err := c.Links(ctx)
	if err != nil {
		return nil, err
	}
	var out []rtnl.Link
	for _, l := range links {
		if l.MasterIndex == bridgeIndex && strings.HasPrefix(l.Name, prefix) {
			out = append(out, l)
		}
	}
	return out, nil
}

// enableForwarding turns on IPv4 (and for an IPv6 gateway, IPv6)
// forwarding in the runtime's namespace, as the reference bridge plugin does
// for a gateway: /proc/sys/net is per namespace, so this is the namespace
// the plugin runs in.
func enableForwarding(v6 bool) error {
	paths := []string{"/proc/sys/net/ipv4/ip_forward"}
	if v6 {
		paths = append(paths, "/proc/sys/net/ipv6/conf/all/forwarding")
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(b)) == "1" {
			continue
		}
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("enable forwarding: %w", err)
		}
	}
	return nil
}

// openNetns opens CNI_NETNS.
func openNetns(path string) (*netns.Handle, error) {
	if path == "" {
		return nil, errors.New("CNI_NETNS is empty")
	}
	return netns.Open(path)
}

// prefixOf converts an address with its mask to a netip.Prefix.
func prefixOf(ip []byte, ones int) netip.Prefix {
	a, _ := netip.AddrFromSlice(ip)
	return netip.PrefixFrom(a.Unmap(), ones)
}

// deleteLinks deletes links in one kernel batch: it puts them into a device
// group that no link of the namespace uses (all is the namespace's links)
// and deletes that group with one RTM_DELLINK, which unregisters them
// together, paying the RCU grace periods of unregistering once instead of
// once per link (GC of 1000 veths: well under a second instead of tens).
func deleteLinks(ctx context.Context, c *rtnl.Conn, links, all []rtnl.Link) error {
	if len(links) == 0 {
		return nil
	}
	used := map[uint32]bool{}
	for _, l := range all {
		used[l.Group] = true
	}
	var group uint32
	for group == 0 || used[group] {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		group = binary.NativeEndian.Uint32(b[:])&0x0fffffff | 0x60000000
	}
	attr := func() []byte {
		ae := netlink.NewAttributeEncoder()
		ae.Uint32(unix.IFLA_GROUP, group)
		b, _ := ae.Encode()
		return b
	}()
	for _, l := range links {
		if _, err := c.Execute(ctx, unix.RTM_NEWLINK, netlink.Acknowledge, ifinfomsg(unix.AF_UNSPEC, l.Index, 0, 0, attr)); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("group %s for deletion: %w", l.Name, err)
		}
	}
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = l.Name
	}
	if err := unlink(ctx, ifinfomsg(unix.AF_UNSPEC, 0, 0, 0, attr), names); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %d links: %w", len(links), err)
	}
	return nil
}

// waitReady waits (at most 2 s) until the link is operationally up with a
// real qdisc. Bringing a veth up only asks: the kernel's linkwatch work
// later turns the carrier into operstate UP and swaps the noop qdisc, which
// drops every packet sent before, for a real one. On a busy host that
// lags, and a DHCPDISCOVER sent in the gap is lost (the client then waits
// for its first retry, a second).
func waitReady(ctx context.Context, c *rtnl.Conn, name string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		l, err := c.LinkByName(ctx, name)
		if err != nil {
			return err
		}
		if l.OperState == "UP" && l.Qdisc != "" && l.Qdisc != "noop" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not up after 2s (operstate %s, qdisc %s)", name, l.OperState, l.Qdisc)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}
