package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The kind-specific part of ip -d for bridges and bridge ports, as
// iproute2 6.1 prints it (ip/iplink_bridge.c bridge_print_opt and
// ip/iplink_bridge_slave.c bridge_slave_print_opt): the attributes in
// iproute2's order, each only when the kernel sent it, with ip's words in
// the text and its keys in JSON.

// detailKind says how one attribute is printed.
type detailKind int

const (
	dU8 detailKind = iota
	dU16
	dU32
	dU64
	dHex16     // "%#llx": 0 or 0x...; a string in JSON
	dBridgeID  // struct ifla_bridge_id as "8000.2:0:0:0:0:1"
	dTimer     // clock_t as "%4i.%.2i" (JSON: a bare number)
	dMAC       // a link-layer address
	dProto     // an ethertype (802.1Q, 802.1ad)
	dOnOff     // u8 as on/off; a bool in JSON
	dPortState // u8 as disabled/listening/...
	dBoolopt   // struct br_boolopt_multi: two values
	dTextOnOff // u8 as on/off, text only
	dFwdMaskStr
)

// detailAttr is one attribute: its type, JSON key, text label and kind.
type detailAttr struct {
	typ   uint16
	key   string
	label string
	kind  detailKind
	// from is the attribute whose bytes are printed, when it is not typ
	// (ip prints the bridge id as designated_root); 0: typ.
	from uint16
}

var bridgeDetailAttrs = []detailAttr{
	{unix.IFLA_BR_FORWARD_DELAY, "forward_delay", "forward_delay", dU32, 0},
	{unix.IFLA_BR_HELLO_TIME, "hello_time", "hello_time", dU32, 0},
	{unix.IFLA_BR_MAX_AGE, "max_age", "max_age", dU32, 0},
	{unix.IFLA_BR_AGEING_TIME, "ageing_time", "ageing_time", dU32, 0},
	{unix.IFLA_BR_STP_STATE, "stp_state", "stp_state", dU32, 0},
	{unix.IFLA_BR_PRIORITY, "priority", "priority", dU16, 0},
	{unix.IFLA_BR_VLAN_FILTERING, "vlan_filtering", "vlan_filtering", dU8, 0},
	{unix.IFLA_BR_VLAN_PROTOCOL, "vlan_protocol", "vlan_protocol", dProto, 0},
	{unix.IFLA_BR_BRIDGE_ID, "bridge_id", "bridge_id", dBridgeID, 0},
	{unix.IFLA_BR_ROOT_ID, "root_id", "designated_root", dBridgeID, unix.IFLA_BR_BRIDGE_ID},
	{unix.IFLA_BR_ROOT_PORT, "root_port", "root_port", dU16, 0},
	{unix.IFLA_BR_ROOT_PATH_COST, "root_path_cost", "root_path_cost", dU32, 0},
	{unix.IFLA_BR_TOPOLOGY_CHANGE, "topology_change", "topology_change", dU8, 0},
	{unix.IFLA_BR_TOPOLOGY_CHANGE_DETECTED, "topology_change_detected", "topology_change_detected", dU8, 0},
	{unix.IFLA_BR_HELLO_TIMER, "hello_timer", "hello_timer", dTimer, 0},
	{unix.IFLA_BR_TCN_TIMER, "tcn_timer", "tcn_timer", dTimer, 0},
	{unix.IFLA_BR_TOPOLOGY_CHANGE_TIMER, "topology_change_timer", "topology_change_timer", dTimer, 0},
	{unix.IFLA_BR_GC_TIMER, "gc_timer", "gc_timer", dTimer, 0},
	{unix.IFLA_BR_VLAN_DEFAULT_PVID, "vlan_default_pvid", "vlan_default_pvid", dU16, 0},
	{unix.IFLA_BR_VLAN_STATS_ENABLED, "vlan_stats_enabled", "vlan_stats_enabled", dU8, 0},
	{unix.IFLA_BR_VLAN_STATS_PER_PORT, "vlan_stats_per_port", "vlan_stats_per_port", dU8, 0},
	{unix.IFLA_BR_GROUP_FWD_MASK, "group_fwd_mask", "group_fwd_mask", dHex16, 0},
	{unix.IFLA_BR_GROUP_ADDR, "group_addr", "group_address", dMAC, 0},
	{unix.IFLA_BR_MCAST_SNOOPING, "mcast_snooping", "mcast_snooping", dU8, 0},
	{unix.IFLA_BR_MULTI_BOOLOPT, "", "", dBoolopt, 0},
	{unix.IFLA_BR_MCAST_ROUTER, "mcast_router", "mcast_router", dU8, 0},
	{unix.IFLA_BR_MCAST_QUERY_USE_IFADDR, "mcast_query_use_ifaddr", "mcast_query_use_ifaddr", dU8, 0},
	{unix.IFLA_BR_MCAST_QUERIER, "mcast_querier", "mcast_querier", dU8, 0},
	{unix.IFLA_BR_MCAST_HASH_ELASTICITY, "mcast_hash_elasticity", "mcast_hash_elasticity", dU32, 0},
	{unix.IFLA_BR_MCAST_HASH_MAX, "mcast_hash_max", "mcast_hash_max", dU32, 0},
	{unix.IFLA_BR_MCAST_LAST_MEMBER_CNT, "mcast_last_member_cnt", "mcast_last_member_count", dU32, 0},
	{unix.IFLA_BR_MCAST_STARTUP_QUERY_CNT, "mcast_startup_query_cnt", "mcast_startup_query_count", dU32, 0},
	{unix.IFLA_BR_MCAST_LAST_MEMBER_INTVL, "mcast_last_member_intvl", "mcast_last_member_interval", dU64, 0},
	{unix.IFLA_BR_MCAST_MEMBERSHIP_INTVL, "mcast_membership_intvl", "mcast_membership_interval", dU64, 0},
	{unix.IFLA_BR_MCAST_QUERIER_INTVL, "mcast_querier_intvl", "mcast_querier_interval", dU64, 0},
	{unix.IFLA_BR_MCAST_QUERY_INTVL, "mcast_query_intvl", "mcast_query_interval", dU64, 0},
	{unix.IFLA_BR_MCAST_QUERY_RESPONSE_INTVL, "mcast_query_response_intvl", "mcast_query_response_interval", dU64, 0},
	{unix.IFLA_BR_MCAST_STARTUP_QUERY_INTVL, "mcast_startup_query_intvl", "mcast_startup_query_interval", dU64, 0},
	{unix.IFLA_BR_MCAST_STATS_ENABLED, "mcast_stats_enabled", "mcast_stats_enabled", dU8, 0},
	{unix.IFLA_BR_MCAST_IGMP_VERSION, "mcast_igmp_version", "mcast_igmp_version", dU8, 0},
	{unix.IFLA_BR_MCAST_MLD_VERSION, "mcast_mld_version", "mcast_mld_version", dU8, 0},
	{unix.IFLA_BR_NF_CALL_IPTABLES, "nf_call_iptables", "nf_call_iptables", dU8, 0},
	{unix.IFLA_BR_NF_CALL_IP6TABLES, "nf_call_ip6tables", "nf_call_ip6tables", dU8, 0},
	{unix.IFLA_BR_NF_CALL_ARPTABLES, "nf_call_arptables", "nf_call_arptables", dU8, 0},
}

var bridgePortDetailAttrs = []detailAttr{
	{unix.IFLA_BRPORT_STATE, "state", "state", dPortState, 0},
	{unix.IFLA_BRPORT_PRIORITY, "priority", "priority", dU16, 0},
	{unix.IFLA_BRPORT_COST, "cost", "cost", dU32, 0},
	{unix.IFLA_BRPORT_MODE, "hairpin", "hairpin", dOnOff, 0},
	{unix.IFLA_BRPORT_GUARD, "guard", "guard", dOnOff, 0},
	{unix.IFLA_BRPORT_PROTECT, "root_block", "root_block", dOnOff, 0},
	{unix.IFLA_BRPORT_FAST_LEAVE, "fastleave", "fastleave", dOnOff, 0},
	{unix.IFLA_BRPORT_LEARNING, "learning", "learning", dOnOff, 0},
	{unix.IFLA_BRPORT_UNICAST_FLOOD, "flood", "flood", dOnOff, 0},
	{unix.IFLA_BRPORT_ID, "id", "port_id", dHex16, 0},
	{unix.IFLA_BRPORT_NO, "no", "port_no", dHex16, 0},
	{unix.IFLA_BRPORT_DESIGNATED_PORT, "designated_port", "designated_port", dU16, 0},
	{unix.IFLA_BRPORT_DESIGNATED_COST, "designated_cost", "designated_cost", dU16, 0},
	{unix.IFLA_BRPORT_BRIDGE_ID, "bridge_id", "designated_bridge", dBridgeID, 0},
	{unix.IFLA_BRPORT_ROOT_ID, "root_id", "designated_root", dBridgeID, 0},
	{unix.IFLA_BRPORT_HOLD_TIMER, "hold_timer", "hold_timer", dTimer, 0},
	{unix.IFLA_BRPORT_MESSAGE_AGE_TIMER, "message_age_timer", "message_age_timer", dTimer, 0},
	{unix.IFLA_BRPORT_FORWARD_DELAY_TIMER, "forward_delay_timer", "forward_delay_timer", dTimer, 0},
	{unix.IFLA_BRPORT_TOPOLOGY_CHANGE_ACK, "topology_change_ack", "topology_change_ack", dU8, 0},
	{unix.IFLA_BRPORT_CONFIG_PENDING, "config_pending", "config_pending", dU8, 0},
	{unix.IFLA_BRPORT_PROXYARP, "proxy_arp", "proxy_arp", dOnOff, 0},
	{unix.IFLA_BRPORT_PROXYARP_WIFI, "proxy_arp_wifi", "proxy_arp_wifi", dOnOff, 0},
	{unix.IFLA_BRPORT_MULTICAST_ROUTER, "multicast_router", "mcast_router", dU8, 0},
	{unix.IFLA_BRPORT_FAST_LEAVE, "", "mcast_fast_leave", dTextOnOff, 0},
	{unix.IFLA_BRPORT_MCAST_FLOOD, "mcast_flood", "mcast_flood", dOnOff, 0},
	{unix.IFLA_BRPORT_BCAST_FLOOD, "bcast_flood", "bcast_flood", dOnOff, 0},
	{unix.IFLA_BRPORT_MCAST_TO_UCAST, "mcast_to_unicast", "mcast_to_unicast", dOnOff, 0},
	{unix.IFLA_BRPORT_NEIGH_SUPPRESS, "neigh_suppress", "neigh_suppress", dOnOff, 0},
	{unix.IFLA_BRPORT_GROUP_FWD_MASK, "group_fwd_mask", "group_fwd_mask", dHex16, 0},
	{unix.IFLA_BRPORT_GROUP_FWD_MASK, "group_fwd_mask_str", "group_fwd_mask_str", dFwdMaskStr, 0},
	{unix.IFLA_BRPORT_VLAN_TUNNEL, "vlan_tunnel", "vlan_tunnel", dOnOff, 0},
	{unix.IFLA_BRPORT_ISOLATED, "isolated", "isolated", dOnOff, 0},
	{36, "locked", "locked", dOnOff, 0}, // IFLA_BRPORT_LOCKED
}

var portStateNames = []string{"disabled", "listening", "learning", "forwarding", "blocking"}

// renderDetailAttrs renders raw (the attributes of IFLA_INFO_DATA or
// IFLA_INFO_SLAVE_DATA) with table: the text (each field followed by a
// space, as ip) and the JSON object.
func renderDetailAttrs(raw []byte, table []detailAttr) (text, js string) {
	attrs := map[uint16][]byte{}
	if ad, err := netlink.NewAttributeDecoder(raw); err == nil {
		for ad.Next() {
			attrs[ad.Type()&^unix.NLA_F_NESTED] = ad.Bytes()
		}
	}
	var t, j strings.Builder
	add := func(key, label, textVal, jsonVal string) {
		if label != "" {
			t.WriteString(label + " " + textVal + " ")
		}
		if key != "" {
			if j.Len() > 0 {
				j.WriteString(",")
			}
			j.WriteString(quoteIP(key) + ":" + jsonVal)
		}
	}
	for _, a := range table {
		b, ok := attrs[a.typ]
		if !ok {
			continue
		}
		if a.from != 0 {
			if b, ok = attrs[a.from]; !ok {
				continue
			}
		}
		var v uint64
		switch {
		case len(b) >= 8:
			v = binary.NativeEndian.Uint64(b[:8])
		case len(b) >= 4:
			v = uint64(binary.NativeEndian.Uint32(b[:4]))
		case len(b) >= 2:
			v = uint64(binary.NativeEndian.Uint16(b[:2]))
		case len(b) >= 1:
			v = uint64(b[0])
		}
		switch a.kind {
		case dU8:
			if len(b) >= 1 {
				v = uint64(b[0])
			}
			add(a.key, a.label, fmt.Sprint(v), fmt.Sprint(v))
		case dU16, dU32, dU64:
			s := fmt.Sprint(v)
			add(a.key, a.label, s, s)
		case dHex16:
			s := "0"
			if v != 0 {
				s = fmt.Sprintf("%#x", v)
			}
			add(a.key, a.label, s, quoteIP(s))
		case dFwdMaskStr:
			s := fwdMaskString(uint16(v))
			add(a.key, a.label, s, quoteIP(s))
		case dBridgeID:
			if len(b) < 8 {
				continue
			}
			mac := make([]string, 6)
			for i, c := range b[2:8] {
				mac[i] = fmt.Sprintf("%x", c)
			}
			s := fmt.Sprintf("%02x%02x.%s", b[0], b[1], strings.Join(mac, ":"))
			add(a.key, a.label, s, quoteIP(s))
		case dTimer:
			add(a.key, "", "", fmt.Sprintf("%d.%02d", v/100, v%100))
			if a.label != "" {
				fmt.Fprintf(&t, "%s %4d.%02d ", a.label, v/100, v%100)
			}
		case dMAC:
			s := net.HardwareAddr(b).String()
			add(a.key, a.label, s, quoteIP(s))
		case dProto:
			p := binary.BigEndian.Uint16(b[:2])
			s := fmt.Sprintf("%#x", p)
			switch p {
			case unix.ETH_P_8021Q:
				s = "802.1Q"
			case unix.ETH_P_8021AD:
				s = "802.1ad"
			}
			add(a.key, a.label, s, quoteIP(s))
		case dOnOff, dTextOnOff:
			on := len(b) > 0 && b[0] != 0
			s := "off"
			if on {
				s = "on"
			}
			add(a.key, a.label, s, fmt.Sprint(on))
		case dPortState:
			if len(b) > 0 && int(b[0]) < len(portStateNames) {
				add(a.key, a.label, portStateNames[b[0]], quoteIP(portStateNames[b[0]]))
			} else if len(b) > 0 {
				fmt.Fprintf(&t, "state (%d) ", b[0])
				add("state_index", "", "", fmt.Sprint(b[0]))
			}
		case dBoolopt:
			if len(b) < 8 {
				continue
			}
			val, mask := binary.NativeEndian.Uint32(b[0:4]), binary.NativeEndian.Uint32(b[4:8])
			for _, o := range []struct {
				bit  uint32
				name string
			}{{1 << 0, "no_linklocal_learn"}, {1 << 1, "mcast_vlan_snooping"}} {
				if mask&o.bit != 0 {
					n := "0"
					if val&o.bit != 0 {
						n = "1"
					}
					add(o.name, o.name, n, n)
				}
			}
		}
	}
	return t.String(), "{" + j.String() + "}"
}

// fwdMaskString names the bits of a port's group_fwd_mask as ip does.
func fwdMaskString(m uint16) string {
	names := map[int]string{0: "stp", 2: "lacp", 14: "lldp"}
	var parts []string
	for i := 0; m != 0; i, m = i+1, m>>1 {
		if m&1 != 0 {
			if n, ok := names[i]; ok {
				parts = append(parts, n)
			} else {
				parts = append(parts, fmt.Sprintf("0x%x", 1<<i))
			}
		}
	}
	if len(parts) == 0 {
		return "0x0"
	}
	return strings.Join(parts, ",")
}
