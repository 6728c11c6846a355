package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file holds the bridge-specific netlink encoding and decoding: the
// IFLA_BR_* attributes of a bridge (IFLA_LINKINFO/IFLA_INFO_DATA), the
// IFLA_BRPORT_* attributes of a port (IFLA_INFO_SLAVE_DATA or IFLA_PROTINFO)
// and the AF_BRIDGE neighbour messages of the forwarding database. It works
// on raw message bytes so that a dump of a 1000-port bridge is decoded once,
// and it has no kernel dependency: codec_test.go checks it with golden bytes.

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (linux/rtnetlink.h, 4.19+):
// link dumps leave out the counters, which bridge never reads.
const rtextFilterSkipStats = 1 << 3

// Kernel message sizes (linux/rtnetlink.h, linux/neighbour.h).
const (
	sizeofIfInfomsg = 16 // struct ifinfomsg
	sizeofNdmsg     = 12 // struct ndmsg
	sizeofCacheinfo = 16 // struct nda_cacheinfo
	sizeofBridgeID  = 8  // struct ifla_bridge_id
)

// userHZ is the kernel's USER_HZ: bridge timers cross netlink in clock_t
// units of 1/100 s.
const userHZ = 100

var errShort = errors.New("message too short")

// ID is a bridge identifier: a 16-bit priority followed by a MAC address, as
// in struct ifla_bridge_id. Its String form is brctl's "8000.aabbccddeeff".
type ID struct {
	Priority uint16
	Addr     [6]byte
}

// String formats the ID as brctl and /sys/class/net/BR/bridge/bridge_id do:
// four hex digits of priority, a dot, twelve hex digits of MAC.
func (id ID) String() string {
	const hexdig = "0123456789abcdef"
	var b [17]byte
	p := [2]byte{byte(id.Priority >> 8), byte(id.Priority)}
	for i, v := range p {
		b[2*i], b[2*i+1] = hexdig[v>>4], hexdig[v&0xf]
	}
	b[4] = '.'
	for i, v := range id.Addr {
		b[5+2*i], b[6+2*i] = hexdig[v>>4], hexdig[v&0xf]
	}
	return string(b[:])
}

// decodeID decodes a struct ifla_bridge_id: the priority is two bytes in
// network order, then the MAC address.
func decodeID(b []byte) (ID, error) {
	if len(b) < sizeofBridgeID {
		return ID{}, fmt.Errorf("bridge id: %w", errShort)
	}
	var id ID
	id.Priority = binary.BigEndian.Uint16(b[0:2])
	copy(id.Addr[:], b[2:8])
	return id, nil
}

// bridgeAttrs are the IFLA_BR_* attributes that bridge reads.
type bridgeAttrs struct {
	forwardDelay uint32 // clock_t
	helloTime    uint32 // clock_t
	maxAge       uint32 // clock_t
	ageingTime   uint32 // clock_t
	stpState     uint32 // 0 off, 1 kernel STP, 2 user-space STP
	priority     uint16
	bridgeID     ID
	rootID       ID
	rootPort     uint16
	// the spanning tree's state (brctl showstp)
	rootPathCost                 uint32
	helloTimer, tcnTimer         uint64 // clock_t
	topoChangeTimer, gcTimer     uint64 // clock_t
	topoChange, topoChangeDetect uint8
}

// portAttrs are the IFLA_BRPORT_* attributes that bridge reads.
type portAttrs struct {
	state    uint8 // BR_STATE_*
	priority uint16
	cost     uint32
	no       uint16 // the port number brctl showmacs prints
	id       uint16
	hasState bool
	// the spanning tree's view of the port (brctl showstp)
	desRoot, desBridge           ID
	desPort, desCost             uint16
	msgAgeTimer, fwdDelayTimer   uint64 // clock_t
	holdTimer                    uint64 // clock_t
	configPending, topoChangeAck uint8
	hairpin                      uint8 // IFLA_BRPORT_MODE
}

// linkMsg is the part of an RTM_NEWLINK message that bridge needs.
type linkMsg struct {
	hwType    uint16 // ifi_type: ARPHRD_ETHER, ARPHRD_LOOPBACK, ...
	index     uint32
	flags     uint32 // IFF_*
	name      string
	master    uint32
	mtu       uint32
	addr      net.HardwareAddr
	operState uint8
	kind      string // IFLA_INFO_KIND: "bridge", "veth", ...
	slaveKind string // IFLA_INFO_SLAVE_KIND: "bridge" for a bridge port
	br        *bridgeAttrs
	port      *portAttrs
}

// decodeLink decodes one RTM_NEWLINK message body (struct ifinfomsg and
// attributes) from a link dump or get.
func decodeLink(b []byte) (linkMsg, error) {
	var m linkMsg
	if len(b) < sizeofIfInfomsg {
		return m, fmt.Errorf("decode link: %w", errShort)
	}
	m.hwType = binary.NativeEndian.Uint16(b[2:4])
	m.index = uint32(int32(binary.NativeEndian.Uint32(b[4:8])))
	m.flags = binary.NativeEndian.Uint32(b[8:12])
	ad, err := netlink.NewAttributeDecoder(b[sizeofIfInfomsg:])
	if err != nil {
		return m, fmt.Errorf("decode link %d: %w", m.index, err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_IFNAME:
			m.name = ad.String()
		case unix.IFLA_MASTER:
			m.master = ad.Uint32()
		case unix.IFLA_MTU:
			m.mtu = ad.Uint32()
		case unix.IFLA_ADDRESS:
			m.addr = net.HardwareAddr(append([]byte(nil), ad.Bytes()...))
		case unix.IFLA_OPERSTATE:
			m.operState = ad.Uint8()
		case unix.IFLA_LINKINFO:
			ad.Nested(m.decodeLinkInfo)
		case unix.IFLA_PROTINFO:
			// AF_BRIDGE dumps carry the port attributes here.
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				p, err := decodePortAttrs(nad)
				if err == nil {
					m.port = p
				}
				return err
			})
		}
	}
	if err := ad.Err(); err != nil {
		return m, fmt.Errorf("decode link %d: %w", m.index, err)
	}
	return m, nil
}

// decodeLinkInfo decodes IFLA_LINKINFO. IFLA_INFO_DATA follows
// IFLA_INFO_KIND and IFLA_INFO_SLAVE_DATA follows IFLA_INFO_SLAVE_KIND in
// every kernel message, so the kinds are known when the data arrives.
func (m *linkMsg) decodeLinkInfo(ad *netlink.AttributeDecoder) error {
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_INFO_KIND:
			m.kind = ad.String()
		case unix.IFLA_INFO_SLAVE_KIND:
			m.slaveKind = ad.String()
		case unix.IFLA_INFO_DATA:
			if m.kind != "bridge" {
				continue
			}
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				br, err := decodeBridgeAttrs(nad)
				if err == nil {
					m.br = br
				}
				return err
			})
		case unix.IFLA_INFO_SLAVE_DATA:
			if m.slaveKind != "bridge" {
				continue
			}
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				p, err := decodePortAttrs(nad)
				if err == nil {
					m.port = p
				}
				return err
			})
		}
	}
	return ad.Err()
}

// decodeBridgeAttrs decodes the IFLA_BR_* attributes inside IFLA_INFO_DATA.
func decodeBridgeAttrs(ad *netlink.AttributeDecoder) (*bridgeAttrs, error) {
	br := &bridgeAttrs{}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_BR_FORWARD_DELAY:
			br.forwardDelay = ad.Uint32()
		case unix.IFLA_BR_HELLO_TIME:
			br.helloTime = ad.Uint32()
		case unix.IFLA_BR_MAX_AGE:
			br.maxAge = ad.Uint32()
		case unix.IFLA_BR_AGEING_TIME:
			br.ageingTime = ad.Uint32()
		case unix.IFLA_BR_STP_STATE:
			br.stpState = ad.Uint32()
		case unix.IFLA_BR_PRIORITY:
			br.priority = ad.Uint16()
		case unix.IFLA_BR_ROOT_PORT:
			br.rootPort = ad.Uint16()
		case unix.IFLA_BR_ROOT_PATH_COST:
			br.rootPathCost = ad.Uint32()
		case unix.IFLA_BR_HELLO_TIMER:
			br.helloTimer = ad.Uint64()
		case unix.IFLA_BR_TCN_TIMER:
			br.tcnTimer = ad.Uint64()
		case unix.IFLA_BR_TOPOLOGY_CHANGE_TIMER:
			br.topoChangeTimer = ad.Uint64()
		case unix.IFLA_BR_GC_TIMER:
			br.gcTimer = ad.Uint64()
		case unix.IFLA_BR_TOPOLOGY_CHANGE:
			br.topoChange = ad.Uint8()
		case unix.IFLA_BR_TOPOLOGY_CHANGE_DETECTED:
			br.topoChangeDetect = ad.Uint8()
		case unix.IFLA_BR_BRIDGE_ID, unix.IFLA_BR_ROOT_ID:
			id, err := decodeID(ad.Bytes())
			if err != nil {
				return nil, err
			}
			if ad.Type() == unix.IFLA_BR_BRIDGE_ID {
				br.bridgeID = id
			} else {
				br.rootID = id
			}
		}
	}
	return br, ad.Err()
}

// decodePortAttrs decodes the IFLA_BRPORT_* attributes of a port.
func decodePortAttrs(ad *netlink.AttributeDecoder) (*portAttrs, error) {
	p := &portAttrs{}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_BRPORT_STATE:
			p.state = ad.Uint8()
			p.hasState = true
		case unix.IFLA_BRPORT_PRIORITY:
			p.priority = ad.Uint16()
		case unix.IFLA_BRPORT_COST:
			p.cost = ad.Uint32()
		case unix.IFLA_BRPORT_NO:
			p.no = ad.Uint16()
		case unix.IFLA_BRPORT_ID:
			p.id = ad.Uint16()
		case unix.IFLA_BRPORT_ROOT_ID, unix.IFLA_BRPORT_BRIDGE_ID:
			id, err := decodeID(ad.Bytes())
			if err != nil {
				return nil, err
			}
			if ad.Type() == unix.IFLA_BRPORT_ROOT_ID {
				p.desRoot = id
			} else {
				p.desBridge = id
			}
		case unix.IFLA_BRPORT_DESIGNATED_PORT:
			p.desPort = ad.Uint16()
		case unix.IFLA_BRPORT_DESIGNATED_COST:
			p.desCost = ad.Uint16()
		case unix.IFLA_BRPORT_MESSAGE_AGE_TIMER:
			p.msgAgeTimer = ad.Uint64()
		case unix.IFLA_BRPORT_FORWARD_DELAY_TIMER:
			p.fwdDelayTimer = ad.Uint64()
		case unix.IFLA_BRPORT_HOLD_TIMER:
			p.holdTimer = ad.Uint64()
		case unix.IFLA_BRPORT_CONFIG_PENDING:
			p.configPending = ad.Uint8()
		case unix.IFLA_BRPORT_TOPOLOGY_CHANGE_ACK:
			p.topoChangeAck = ad.Uint8()
		case unix.IFLA_BRPORT_MODE:
			p.hairpin = ad.Uint8()
		}
	}
	return p, ad.Err()
}

// encodeConfig writes the IFLA_BR_* attributes that cfg sets, in the units
// the kernel wants (clock_t for times). Fields left nil are not sent, so the
// kernel keeps its value.
func encodeConfig(ae *netlink.AttributeEncoder, cfg *Config) error {
	if cfg == nil {
		return nil
	}
	if cfg.ForwardDelay != nil {
		v, err := toClock("forward delay", *cfg.ForwardDelay)
		if err != nil {
			return err
		}
		ae.Uint32(unix.IFLA_BR_FORWARD_DELAY, v)
	}
	if cfg.AgeingTime != nil {
		v, err := toClock("ageing time", *cfg.AgeingTime)
		if err != nil {
			return err
		}
		ae.Uint32(unix.IFLA_BR_AGEING_TIME, v)
	}
	if cfg.HelloTime != nil {
		v, err := toClock("hello time", *cfg.HelloTime)
		if err != nil {
			return err
		}
		ae.Uint32(unix.IFLA_BR_HELLO_TIME, v)
	}
	if cfg.MaxAge != nil {
		v, err := toClock("max age", *cfg.MaxAge)
		if err != nil {
			return err
		}
		ae.Uint32(unix.IFLA_BR_MAX_AGE, v)
	}
	switch {
	case cfg.STPState != nil:
		ae.Uint32(unix.IFLA_BR_STP_STATE, *cfg.STPState)
	case cfg.STP != nil:
		var v uint32
		if *cfg.STP {
			v = 1
		}
		ae.Uint32(unix.IFLA_BR_STP_STATE, v)
	}
	if cfg.Priority != nil {
		ae.Uint16(unix.IFLA_BR_PRIORITY, *cfg.Priority)
	}
	if cfg.VLANFiltering != nil {
		var v uint8
		if *cfg.VLANFiltering {
			v = 1
		}
		ae.Uint8(unix.IFLA_BR_VLAN_FILTERING, v)
	}
	return nil
}

// toClock converts d to clock_t (1/100 s), refusing negative or huge values.
func toClock(what string, d time.Duration) (uint32, error) {
	if d < 0 {
		return 0, fmt.Errorf("%s %v: %w", what, d, errNegative)
	}
	v := d / (time.Second / userHZ)
	if v > 0xffffffff {
		return 0, fmt.Errorf("%s %v: %w", what, d, errTooLarge)
	}
	return uint32(v), nil
}

// fromClock converts clock_t (1/100 s) to a duration.
func fromClock(v uint32) time.Duration {
	return time.Duration(v) * (time.Second / userHZ)
}

var (
	errNegative = errors.New("must not be negative")
	errTooLarge = errors.New("too large")
)

// fdbMsg is one AF_BRIDGE RTM_NEWNEIGH message: a forwarding database entry.
type fdbMsg struct {
	ifindex uint32 // the port (or the bridge itself for its own address)
	state   uint16 // NUD_PERMANENT local, NUD_NOARP static, NUD_REACHABLE/STALE learned
	flags   uint8  // NTF_*
	mac     net.HardwareAddr
	master  uint32 // NDA_MASTER: the bridge; 0 for a device's own (self) entries
	vlan    uint16
	updated uint32 // clock_t since the entry was last refreshed
	used    uint32 // clock_t since the entry was last used
	hasInfo bool
}

// decodeFDB decodes one RTM_NEWNEIGH message body of family AF_BRIDGE.
func decodeFDB(b []byte) (fdbMsg, error) {
	var m fdbMsg
	if len(b) < sizeofNdmsg {
		return m, fmt.Errorf("decode fdb entry: %w", errShort)
	}
	if b[0] != unix.AF_BRIDGE {
		return m, fmt.Errorf("decode fdb entry: family %d is not AF_BRIDGE", b[0])
	}
	m.ifindex = uint32(int32(binary.NativeEndian.Uint32(b[4:8])))
	m.state = binary.NativeEndian.Uint16(b[8:10])
	m.flags = b[10]
	ad, err := netlink.NewAttributeDecoder(b[sizeofNdmsg:])
	if err != nil {
		return m, fmt.Errorf("decode fdb entry: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NDA_LLADDR:
			m.mac = net.HardwareAddr(append([]byte(nil), ad.Bytes()...))
		case unix.NDA_MASTER:
			m.master = ad.Uint32()
		case unix.NDA_VLAN:
			m.vlan = ad.Uint16()
		case unix.NDA_CACHEINFO:
			ci := ad.Bytes()
			if len(ci) < sizeofCacheinfo {
				return m, fmt.Errorf("decode fdb entry: cache info: %w", errShort)
			}
			// struct nda_cacheinfo: confirmed, used, updated, refcnt.
			m.used = binary.NativeEndian.Uint32(ci[4:8])
			m.updated = binary.NativeEndian.Uint32(ci[8:12])
			m.hasInfo = true
		}
	}
	if err := ad.Err(); err != nil {
		return m, fmt.Errorf("decode fdb entry: %w", err)
	}
	return m, nil
}
