package rtnl

import (
	"context"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/driver"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
)

// Link is a network interface as RTM_GETLINK describes it.
type Link struct {
	Index        int
	Name         string
	Kind         string // "veth", "bridge", "dummy", ... ("" for physical and loopback)
	MTU          uint32
	Flags        net.Flags // the flags Go knows (up, broadcast, loopback, ...)
	RawFlags     uint32    // every IFF_* flag, as the kernel reports them
	Type         uint16    // ARPHRD_* (1 ether, 772 loopback, ...)
	OperState    string    // "UP", "DOWN", "UNKNOWN", ... as ip prints it
	HardwareAddr net.HardwareAddr
	Broadcast    net.HardwareAddr
	MasterIndex  int    // 0: no master
	Master       string // the master's name; filled in by Links
	ParentIndex  int    // IFLA_LINK: a veth's peer, a vlan's lower device; 0: none
	LinkNetNSID  int    // IFLA_LINK_NETNSID: the parent lives in that peer namespace; -1: same namespace
	Qdisc        string // queueing discipline ("noqueue", "noop", ...)
	TxQueueLen   uint32
	Group        uint32 // device group; 0 is "default"
	LinkMode     uint8  // 0 DEFAULT, 1 DORMANT
	NoGroup      bool   // the reply carried no IFLA_GROUP (the IPv6 view of a link)

	// Stats and CarrierChanges are filled only by the queries that ask
	// for statistics (LinkQuery.Stats); nil and 0 otherwise.
	Stats          *rtnetlink.LinkStats64
	CarrierChanges *uint32

	// Details is filled by the single-link lookups and by the dumps that
	// ask for it (LinkQuery.Details); nil otherwise.
	Details *LinkDetails
}

// LinkDetails are the attributes ip -d prints; a nil field was absent from
// the kernel's description.
type LinkDetails struct {
	Promiscuity, Allmulti, MinMTU, MaxMTU *uint32
	NumTxQueues, NumRxQueues              *uint32
	GSOMaxSize, GSOMaxSegs                *uint32
	TSOMaxSize, TSOMaxSegs, GROMaxSize    *uint32
	AddrGenMode                           *uint8 // IFLA_INET6_ADDR_GEN_MODE
	SlaveKind                             string // IFLA_INFO_SLAVE_KIND: "bridge" for a bridge port
	// InfoData and SlaveData are the raw attributes of IFLA_INFO_DATA
	// (the kind's, e.g. IFLA_BR_*) and IFLA_INFO_SLAVE_DATA (e.g.
	// IFLA_BRPORT_*), for renderers that know them; nil: absent.
	InfoData, SlaveData []byte
}

// decodeDetails reads the ip -d attributes of an RTM_NEWLINK body.
func decodeDetails(data []byte) *LinkDetails {
	d := &LinkDetails{}
	if len(data) <= unix.SizeofIfInfomsg {
		return d
	}
	ad, err := netlink.NewAttributeDecoder(data[unix.SizeofIfInfomsg:])
	if err != nil {
		return d
	}
	u32 := func() *uint32 {
		if len(ad.Bytes()) != 4 {
			return nil
		}
		v := ad.Uint32()
		return &v
	}
	for ad.Next() {
		switch ad.Type() {
		case 30: // IFLA_PROMISCUITY
			d.Promiscuity = u32()
		case 61: // IFLA_ALLMULTI
			d.Allmulti = u32()
		case 50: // IFLA_MIN_MTU
			d.MinMTU = u32()
		case 51: // IFLA_MAX_MTU
			d.MaxMTU = u32()
		case 31: // IFLA_NUM_TX_QUEUES
			d.NumTxQueues = u32()
		case 32: // IFLA_NUM_RX_QUEUES
			d.NumRxQueues = u32()
		case 41: // IFLA_GSO_MAX_SIZE
			d.GSOMaxSize = u32()
		case 40: // IFLA_GSO_MAX_SEGS
			d.GSOMaxSegs = u32()
		case 59: // IFLA_TSO_MAX_SIZE
			d.TSOMaxSize = u32()
		case 60: // IFLA_TSO_MAX_SEGS
			d.TSOMaxSegs = u32()
		case 58: // IFLA_GRO_MAX_SIZE
			d.GROMaxSize = u32()
		case unix.IFLA_AF_SPEC:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() != unix.AF_INET6 {
						continue
					}
					nad.Nested(func(i6 *netlink.AttributeDecoder) error {
						for i6.Next() {
							if i6.Type() == 8 && len(i6.Bytes()) == 1 { // IFLA_INET6_ADDR_GEN_MODE
								v := i6.Uint8()
								d.AddrGenMode = &v
							}
						}
						return nil
					})
				}
				return nil
			})
		case unix.IFLA_LINKINFO:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					switch nad.Type() {
					case unix.IFLA_INFO_SLAVE_KIND:
						d.SlaveKind = nad.String()
					case unix.IFLA_INFO_DATA:
						d.InfoData = append([]byte(nil), nad.Bytes()...)
					case unix.IFLA_INFO_SLAVE_DATA:
						d.SlaveData = append([]byte(nil), nad.Bytes()...)
					}
				}
				return nil
			})
		}
	}
	return d
}

// LinkQuery chooses what QueryLinks and QueryLink ask the kernel for; the
// zero value is what Links and LinkByName ask for.
type LinkQuery struct {
	// Stats asks for the statistics (IFLA_STATS64, as ip -s shows them).
	Stats bool
	// Details decodes what ip -d prints into Link.Details.
	Details bool
	// Family is the address family of the request: 0 (AF_UNSPEC) for
	// the full description; unix.AF_INET6 for the kernel's IPv6 view of
	// each link (fewer attributes: no qdisc, no group), which is what
	// ip -6 prints.
	Family uint8
}

var operStates = [...]string{"UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"}

func operStateString(s rtnetlink.OperationalState) string {
	if int(s) < len(operStates) {
		return operStates[s]
	}
	return strconv.Itoa(int(s))
}

func goFlags(f uint32) net.Flags {
	var g net.Flags
	for _, p := range []struct {
		iff uint32
		f   net.Flags
	}{
		{unix.IFF_UP, net.FlagUp}, {unix.IFF_BROADCAST, net.FlagBroadcast},
		{unix.IFF_LOOPBACK, net.FlagLoopback}, {unix.IFF_POINTOPOINT, net.FlagPointToPoint},
		{unix.IFF_MULTICAST, net.FlagMulticast}, {unix.IFF_RUNNING, net.FlagRunning},
	} {
		if f&p.iff != 0 {
			g |= p.f
		}
	}
	return g
}

// decodeLink turns an RTM_NEWLINK message body into a Link.
func decodeLink(data []byte) (Link, error) {
	var m rtnetlink.LinkMessage
	if err := m.UnmarshalBinary(data); err != nil {
		return Link{}, err
	}
	l := Link{
		Index:       int(m.Index),
		RawFlags:    m.Flags,
		Flags:       goFlags(m.Flags),
		Type:        m.Type,
		LinkNetNSID: linkNetNSID(data),
	}
	if m.Attributes != nil && m.Attributes.TxQueueLen == nil {
		// rtnetlink misses it in the IPv6 view of a link (LinkQuery.Family).
		if v, ok := rawU32(data, unix.IFLA_TXQLEN); ok {
			m.Attributes.TxQueueLen = &v
		}
	}
	if a := m.Attributes; a != nil {
		l.ParentIndex = int(a.Type) // rtnetlink decodes IFLA_LINK into Type
		l.Qdisc = a.QueueDisc
		if a.TxQueueLen != nil {
			l.TxQueueLen = *a.TxQueueLen
		}
		if a.NetDevGroup != nil {
			l.Group = *a.NetDevGroup
		} else {
			l.NoGroup = true
		}
		l.Stats = a.Stats64
		l.CarrierChanges = a.CarrierChanges
		if a.LinkMode != nil {
			l.LinkMode = *a.LinkMode
		}
		l.Name = a.Name
		l.MTU = a.MTU
		l.OperState = operStateString(a.OperationalState)
		l.HardwareAddr = a.Address
		l.Broadcast = a.Broadcast
		if a.Master != nil {
			l.MasterIndex = int(*a.Master)
		}
		if a.Info != nil {
			l.Kind = a.Info.Kind
		}
	}
	return l, nil
}

// iflaLinkNetNSID is IFLA_LINK_NETNSID, which rtnetlink does not decode.
const iflaLinkNetNSID = 37

// linkNetNSID finds IFLA_LINK_NETNSID in an RTM_NEWLINK body, or -1.
func linkNetNSID(data []byte) int {
	if len(data) <= unix.SizeofIfInfomsg {
		return -1
	}
	ad, err := netlink.NewAttributeDecoder(data[unix.SizeofIfInfomsg:])
	if err != nil {
		return -1
	}
	id := -1
	for ad.Next() {
		if ad.Type() == iflaLinkNetNSID && len(ad.Bytes()) == 4 {
			id = int(int32(ad.Int32()))
		}
	}
	if ad.Err() != nil {
		return -1
	}
	return id
}

// rawU32 finds the u32 attribute typ in an RTM_NEWLINK body.
func rawU32(data []byte, typ uint16) (uint32, bool) {
	if len(data) <= unix.SizeofIfInfomsg {
		return 0, false
	}
	ad, err := netlink.NewAttributeDecoder(data[unix.SizeofIfInfomsg:])
	if err != nil {
		return 0, false
	}
	for ad.Next() {
		if ad.Type() == typ && len(ad.Bytes()) == 4 {
			return ad.Uint32(), true
		}
	}
	return 0, false
}

func skipStats() *uint32 {
	v := uint32(rtextFilterSkipStats)
	return &v
}

// Links lists every link of the namespace, sorted by index, with Master
// filled in.
func (c *Conn) Links(ctx context.Context) ([]Link, error) {
	return c.QueryLinks(ctx, LinkQuery{})
}

// linkRequest is the RTM_GETLINK body for q (and index or name, if set).
func linkRequest(q LinkQuery, index int, name string) *rtnetlink.LinkMessage {
	req := &rtnetlink.LinkMessage{Family: uint16(q.Family), Index: uint32(index), Attributes: &rtnetlink.LinkAttributes{Name: name}}
	if !q.Stats {
		req.Attributes.ExtMask = skipStats()
	}
	return req
}

// familyMsg sets the family byte of an ifinfomsg that rtnetlink encodes
// as AF_UNSPEC whatever its Family field says.
type familyMsg struct {
	m   encoding.BinaryMarshaler
	fam uint8
}

func (f familyMsg) MarshalBinary() ([]byte, error) {
	b, err := f.m.MarshalBinary()
	if err == nil && len(b) > 0 {
		b[0] = f.fam
	}
	return b, err
}

// QueryLinks lists every link of the namespace as Links does, with what q
// asks for.
func (c *Conn) QueryLinks(ctx context.Context, q LinkQuery) ([]Link, error) {
	var req encoding.BinaryMarshaler = linkRequest(q, 0, "")
	if q.Family != 0 {
		req = familyMsg{req, q.Family}
	}
	msgs, err := c.dump(ctx, "list links", unix.RTM_GETLINK, unix.RTM_NEWLINK, req)
	if err != nil {
		return nil, err
	}
	links := make([]Link, 0, len(msgs))
	names := make(map[int]string, len(msgs))
	for _, nm := range msgs {
		l, err := decodeLink(nm.Data)
		if err != nil {
			return nil, &Error{Op: "list links", Err: fmt.Errorf("decode: %w", err)}
		}
		if q.Details {
			l.Details = decodeDetails(nm.Data)
		}
		links = append(links, l)
		names[l.Index] = l.Name
	}
	for i := range links {
		if links[i].MasterIndex != 0 {
			links[i].Master = names[links[i].MasterIndex]
		}
	}
	return links, nil
}

// linkNames maps every link index of the namespace to its name.
// It reads only the index and IFLA_IFNAME of each message (a full
// decodeLink of every link cost `route show` more than its routes).
func (c *Conn) linkNames(ctx context.Context) (map[int]string, error) {
	msgs, err := c.dump(ctx, "list links", unix.RTM_GETLINK, unix.RTM_NEWLINK, linkRequest(LinkQuery{}, 0, ""))
	if err != nil {
		return nil, err
	}
	m := make(map[int]string, len(msgs))
	for _, nm := range msgs {
		index, name, err := decodeLinkName(nm.Data)
		if err != nil {
			return nil, &Error{Op: "list links", Err: fmt.Errorf("decode: %w", err)}
		}
		m[index] = name
	}
	return m, nil
}

// decodeLinkName reads the index and the name of an RTM_NEWLINK body.
func decodeLinkName(b []byte) (int, string, error) {
	if len(b) < unix.SizeofIfInfomsg {
		return 0, "", errors.New("short ifinfomsg")
	}
	index := int(binary.NativeEndian.Uint32(b[4:8])) // as decodeLink reads it
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return 0, "", err
	}
	name := ""
	for ad.Next() {
		if ad.Type() == unix.IFLA_IFNAME {
			name = ad.String()
		}
	}
	return index, name, ad.Err()
}

func (c *Conn) getLink(ctx context.Context, obj string, req *rtnetlink.LinkMessage) (Link, error) {
	msgs, err := c.request(ctx, "get link", obj, unix.RTM_GETLINK, 0, req, nil)
	if err != nil {
		return Link{}, err
	}
	for _, nm := range msgs {
		if uint16(nm.Header.Type) == unix.RTM_NEWLINK {
			l, err := decodeLink(nm.Data)
			if err != nil {
				return Link{}, &Error{Op: "get link", Object: obj, Err: fmt.Errorf("decode: %w", err)}
			}
			l.Details = decodeDetails(nm.Data) // one link: cheap
			return l, nil
		}
	}
	return Link{}, &Error{Op: "get link", Object: obj, Err: unix.ENODEV}
}

// LinkByName returns the link called name, with a direct RTM_GETLINK by
// IFLA_IFNAME (no dump). A missing link fails with an error wrapping
// unix.ENODEV. Master is filled in when the link has one.
func (c *Conn) LinkByName(ctx context.Context, name string) (Link, error) {
	return c.QueryLink(ctx, name, LinkQuery{})
}

// QueryLink returns the link called name as LinkByName does, with what q
// asks for.
func (c *Conn) QueryLink(ctx context.Context, name string, q LinkQuery) (Link, error) {
	if err := ValidateLinkName(name); err != nil {
		return Link{}, err
	}
	l, err := c.getLink(ctx, name, linkRequest(q, 0, name))
	if err != nil {
		return Link{}, err
	}
	return l, c.fillMaster(ctx, &l)
}

// LinkByIndex returns the link with the given index.
func (c *Conn) LinkByIndex(ctx context.Context, index int) (Link, error) {
	if index <= 0 {
		return Link{}, &Error{Op: "get link", Object: "index " + strconv.Itoa(index), Err: unix.EINVAL}
	}
	l, err := c.getLink(ctx, "index "+strconv.Itoa(index), &rtnetlink.LinkMessage{
		Index: uint32(index), Attributes: &rtnetlink.LinkAttributes{ExtMask: skipStats()},
	})
	if err != nil {
		return Link{}, err
	}
	return l, c.fillMaster(ctx, &l)
}

func (c *Conn) fillMaster(ctx context.Context, l *Link) error {
	if l.MasterIndex == 0 {
		return nil
	}
	m, err := c.getLink(ctx, "index "+strconv.Itoa(l.MasterIndex), &rtnetlink.LinkMessage{
		Index: uint32(l.MasterIndex), Attributes: &rtnetlink.LinkAttributes{ExtMask: skipStats()},
	})
	if err != nil {
		return err
	}
	l.Master = m.Name
	return nil
}

// newLink creates a link of kind with the given driver data.
func (c *Conn) newLink(ctx context.Context, op, name, kind string, data rtnetlink.LinkDriver) error {
	if err := ValidateLinkName(name); err != nil {
		return err
	}
	req := &rtnetlink.LinkMessage{
		Family: unix.AF_UNSPEC,
		Attributes: &rtnetlink.LinkAttributes{
			Name: name,
			Info: &rtnetlink.LinkInfo{Kind: kind, Data: data},
		},
	}
	return c.ack(ctx, op, name, unix.RTM_NEWLINK, netlink.Create|netlink.Excl, req, nil)
}

// AddVeth creates the veth pair name/peer in one request. A non-nil peerNS
// creates the peer directly inside that namespace (IFLA_NET_NS_FD in the
// peer's info), which is much cheaper than moving it later. Either both
// ends exist afterwards or neither does. An existing name fails with an
// error wrapping unix.EEXIST.
func (c *Conn) AddVeth(ctx context.Context, name, peer string, peerNS *netns.Handle) error {
	if err := ValidateLinkName(peer); err != nil {
		return err
	}
	pa := &rtnetlink.LinkAttributes{Name: peer}
	if peerNS != nil {
		pa.NetNS = rtnetlink.NetNSForFD(uint32(peerNS.Fd()))
	}
	return c.newLink(ctx, "add veth", name, "veth", &driver.Veth{
		PeerInfo: &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Attributes: pa},
	})
}

// AddBridge creates a bridge with the kernel's defaults.
func (c *Conn) AddBridge(ctx context.Context, name string) error {
	return c.newLink(ctx, "add bridge", name, "bridge", nil)
}

// AddDummy creates a dummy link.
func (c *Conn) AddDummy(ctx context.Context, name string) error {
	return c.newLink(ctx, "add dummy", name, "dummy", nil)
}

// LinkSettings are changes that SetLink applies to one link in a single
// request, like one `ip link set` line. Zero fields change nothing.
type LinkSettings struct {
	Up           *bool            // true: up, false: down, nil: unchanged
	MTU          uint32           // 0: unchanged
	HardwareAddr net.HardwareAddr // nil: unchanged
	Master       *string          // the master's name; "" frees the link; nil: unchanged
	MasterIndex  int              // the master by index, no lookup by name (Master must be nil); 0: unchanged
	NetNS        *netns.Handle    // move the link into this namespace; nil: stays
	Name         string           // rename to this; "": unchanged
}

// SetLink applies s to the link called name in one RTM_NEWLINK request, as
// `ip link set` does. The kernel applies a namespace move first, so the
// other settings (and the new name) take effect in the new namespace.
func (c *Conn) SetLink(ctx context.Context, name string, s LinkSettings) error {
	return c.setLink(ctx, "set link", name, s)
}

func (c *Conn) setLink(ctx context.Context, op, name string, s LinkSettings) error {
	if err := ValidateLinkName(name); err != nil {
		return err
	}
	req := &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Attributes: &rtnetlink.LinkAttributes{}}
	a := req.Attributes
	if s.Name != "" && s.Name != name {
		if err := ValidateLinkName(s.Name); err != nil {
			return err
		}
		// A rename needs the index: IFLA_IFNAME then carries the new name.
		index, err := c.linkIndex(ctx, name)
		if err != nil {
			return &Error{Op: op, Object: name, Err: errors.Unwrap(err)}
		}
		req.Index = uint32(index)
		a.Name = s.Name
	} else {
		a.Name = name // the kernel finds the device by IFLA_IFNAME
	}
	if s.Up != nil {
		req.Change = unix.IFF_UP
		if *s.Up {
			req.Flags = unix.IFF_UP
		}
	}
	a.MTU = s.MTU
	if s.HardwareAddr != nil {
		if len(s.HardwareAddr) == 0 {
			return &Error{Op: op, Object: name, Err: fmt.Errorf("empty hardware address: %w", unix.EINVAL)}
		}
		a.Address = s.HardwareAddr
	}
	if s.Master != nil {
		var idx uint32
		if *s.Master != "" {
			if err := ValidateLinkName(*s.Master); err != nil {
				return err
			}
			m, err := c.linkIndex(ctx, *s.Master)
			if err != nil {
				return &Error{Op: op, Object: name, Err: fmt.Errorf("master %s: %w", *s.Master, errors.Unwrap(err))}
			}
			idx = uint32(m)
		}
		a.Master = &idx
	}
	if s.MasterIndex > 0 {
		if s.Master != nil {
			return &Error{Op: op, Object: name, Err: fmt.Errorf("master given by name and by index: %w", unix.EINVAL)}
		}
		idx := uint32(s.MasterIndex)
		a.Master = &idx
	}
	if s.NetNS != nil {
		a.NetNS = rtnetlink.NetNSForFD(uint32(s.NetNS.Fd()))
	}
	return c.ack(ctx, op, name, unix.RTM_NEWLINK, 0, req, nil)
}

// SetUp sets the link up (IFF_UP).
func (c *Conn) SetUp(ctx context.Context, name string) error {
	up := true
	return c.setLink(ctx, "set up", name, LinkSettings{Up: &up})
}

// SetDown sets the link down.
func (c *Conn) SetDown(ctx context.Context, name string) error {
	down := false
	return c.setLink(ctx, "set down", name, LinkSettings{Up: &down})
}

// SetMTU sets the link's MTU; the kernel checks the device's range.
func (c *Conn) SetMTU(ctx context.Context, name string, mtu uint32) error {
	if mtu == 0 {
		return &Error{Op: "set mtu", Object: name, Err: fmt.Errorf("mtu 0: %w", unix.EINVAL)}
	}
	return c.setLink(ctx, "set mtu", name, LinkSettings{MTU: mtu})
}

// SetName renames the link (it must be down for most kinds).
func (c *Conn) SetName(ctx context.Context, name, newName string) error {
	if newName == "" {
		return &Error{Op: "set name", Object: name, Err: fmt.Errorf("%w: empty", ErrInvalidName)}
	}
	return c.setLink(ctx, "set name", name, LinkSettings{Name: newName})
}

// SetHardwareAddr sets the link's MAC address.
func (c *Conn) SetHardwareAddr(ctx context.Context, name string, mac net.HardwareAddr) error {
	if len(mac) == 0 {
		return &Error{Op: "set address", Object: name, Err: fmt.Errorf("empty hardware address: %w", unix.EINVAL)}
	}
	return c.setLink(ctx, "set address", name, LinkSettings{HardwareAddr: mac})
}

// SetMaster enslaves the link to master (a bridge).
func (c *Conn) SetMaster(ctx context.Context, name, master string) error {
	if master == "" {
		return &Error{Op: "set master", Object: name, Err: fmt.Errorf("%w: empty master", ErrInvalidName)}
	}
	return c.setLink(ctx, "set master", name, LinkSettings{Master: &master})
}

// SetNoMaster frees the link from its master.
func (c *Conn) SetNoMaster(ctx context.Context, name string) error {
	none := ""
	return c.setLink(ctx, "set nomaster", name, LinkSettings{Master: &none})
}

// SetNetNS moves the link into the namespace ns, by file descriptor. A move
// costs the kernel an RCU grace period (tens of ms); creating a veth peer
// directly in its namespace with AddVeth avoids it.
func (c *Conn) SetNetNS(ctx context.Context, name string, ns *netns.Handle) error {
	if ns == nil {
		return &Error{Op: "set netns", Object: name, Err: errors.New("nil namespace handle")}
	}
	return c.setLink(ctx, "set netns", name, LinkSettings{NetNS: ns})
}

// DeleteLink deletes the link (both ends, for a veth), by name.
func (c *Conn) DeleteLink(ctx context.Context, name string) error {
	if err := ValidateLinkName(name); err != nil {
		return err
	}
	req := &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Attributes: &rtnetlink.LinkAttributes{Name: name}}
	return c.ack(ctx, "delete link", name, unix.RTM_DELLINK, 0, req, nil)
}
