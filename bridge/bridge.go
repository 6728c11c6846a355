package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/rtnl"
)

// Config holds the bridge settings that Add and Set apply. A nil *Config, or
// a nil field, leaves the kernel's value alone: at creation that is the
// kernel default (STP off, forward delay 15 s, ageing time 300 s, priority
// 32768). Durations are sent in the kernel's 1/100 s units (finer parts are
// dropped) and must not be negative.
type Config struct {
	// STP turns the spanning tree protocol on or off. nil: unchanged.
	STP *bool
	// ForwardDelay is the time a port spends listening and learning before
	// it forwards, when STP is on. The kernel accepts 2 s to 30 s while STP
	// is on. nil: unchanged.
	ForwardDelay *time.Duration
	// AgeingTime is how long a learned MAC address stays in the forwarding
	// database without traffic. Zero makes the bridge a hub that learns
	// nothing. nil: unchanged.
	AgeingTime *time.Duration
	// Priority is the bridge priority, the first part of the bridge id
	// (lower wins the root election). nil: unchanged.
	Priority *uint16
	// STPState sets IFLA_BR_STP_STATE as a number (ip link's stp_state:
	// 0 off, 1 on, the kernel's STP or a user-space helper's), and wins
	// over STP. nil: STP decides.
	STPState *uint32
	// HelloTime is the interval of STP hello packets (1 s to 10 s while
	// STP is on). nil: unchanged.
	HelloTime *time.Duration
	// MaxAge is how long STP information is kept (6 s to 40 s while STP
	// is on). nil: unchanged.
	MaxAge *time.Duration
	// VLANFiltering turns 802.1Q VLAN filtering on the bridge on or off.
	// nil: unchanged.
	VLANFiltering *bool
}

func (cfg *Config) empty() bool {
	return cfg == nil || (cfg.STP == nil && cfg.ForwardDelay == nil && cfg.AgeingTime == nil && cfg.Priority == nil &&
		cfg.STPState == nil && cfg.HelloTime == nil && cfg.MaxAge == nil && cfg.VLANFiltering == nil)
}

// validate checks cfg before anything is sent, so a bad value changes nothing.
func (cfg *Config) validate() error {
	return encodeConfig(netlink.NewAttributeEncoder(), cfg)
}

// DeleteOptions are the options of Delete. A nil *DeleteOptions is the zero
// value: refuse to delete a bridge that is up or still has ports.
type DeleteOptions struct {
	// Force deletes the bridge even when it is up or has ports; the kernel
	// detaches the ports (they stay, without a master) before the bridge
	// goes. Zero value: refuse with ErrBusy and change nothing.
	Force bool
	// DetachPorts deletes a bridge that is down even when it still has
	// ports (the kernel detaches them; they stay, without a master), as
	// brctl delbr does; a bridge that is up is still refused, with
	// brctl's words. Zero value: ports make Delete refuse too.
	DetachPorts bool
}

// PortState is the STP state of a bridge port (BR_STATE_* of linux/if_bridge.h).
type PortState uint8

// Port states, as the kernel numbers them.
const (
	PortDisabled   PortState = 0
	PortListening  PortState = 1
	PortLearning   PortState = 2
	PortForwarding PortState = 3
	PortBlocking   PortState = 4
)

// String returns the state as `bridge link` prints it: "disabled",
// "listening", "learning", "forwarding" or "blocking".
func (s PortState) String() string {
	switch s {
	case PortDisabled:
		return "disabled"
	case PortListening:
		return "listening"
	case PortLearning:
		return "learning"
	case PortForwarding:
		return "forwarding"
	case PortBlocking:
		return "blocking"
	}
	return fmt.Sprintf("state%d", uint8(s))
}

// Bridge describes one bridge and its ports.
type Bridge struct {
	Index        int
	Name         string
	HardwareAddr net.HardwareAddr
	Up           bool   // IFF_UP is set
	ID           ID     // bridge id: priority and MAC, "8000.aabbccddeeff"
	RootID       ID     // the root bridge's id (ID itself when this bridge is root)
	STP          bool   // spanning tree is on (kernel or user-space STP)
	STPState     uint32 // IFLA_BR_STP_STATE: 0 off, 1 kernel STP, 2 user-space STP
	ForwardDelay time.Duration
	HelloTime    time.Duration
	MaxAge       time.Duration
	AgeingTime   time.Duration
	Priority     uint16
	Ports        []Port // sorted by name in byte order, as brctl show lists them

	// The spanning tree's state, as brctl showstp prints it.
	RootPort               uint16
	RootPathCost           uint32
	HelloTimer, TCNTimer   time.Duration
	TopologyChangeTimer    time.Duration
	GCTimer                time.Duration
	TopologyChange         bool
	TopologyChangeDetected bool
}

// Port is one port of a bridge.
type Port struct {
	Index    int
	Name     string
	No       uint16 // port number (brctl showmacs' "port no")
	State    PortState
	Priority uint16
	Cost     uint32
	Up       bool // IFF_UP is set on the port device
	Hairpin  bool // hairpin mode: frames may go back out of the port they came in

	// The spanning tree's view of the port, as brctl showstp prints it.
	ID                                 uint16 // port id: priority and number
	DesignatedRoot, DesignatedBridge   ID
	DesignatedPort, DesignatedCost     uint16
	MessageAgeTimer, ForwardDelayTimer time.Duration
	HoldTimer                          time.Duration
	ConfigPending, TopologyChangeAck   bool
}

// FDBEntry is one entry of a bridge's forwarding database.
type FDBEntry struct {
	MAC       net.HardwareAddr
	Port      string // the port's name
	PortIndex int
	PortNo    uint16
	// Local is true for the addresses of the bridge's own ports.
	Local bool
	// Static is true for entries that never age (local ones, and entries
	// added as static).
	Static bool
	// Ageing is the time since the entry was last refreshed by traffic: the
	// "ageing timer" of brctl showmacs. Zero for static entries.
	Ageing time.Duration
	VLAN   uint16 // 0: no VLAN
}

// ---- netlink plumbing ----

// conn returns c, checked: every request of this package goes through
// c.Execute, on the connection's own socket.
func conn(c *rtnl.Conn) (*rtnl.Conn, error) {
	if c == nil {
		return nil, errors.New("no netlink connection")
	}
	return c, nil
}

// kernelError is a refusal by the kernel: its errno and extended-ack text.
type kernelError struct {
	errno   error
	message string
}

func (k *kernelError) Error() string {
	if k.message != "" {
		return k.errno.Error() + " (" + k.message + ")"
	}
	return k.errno.Error()
}

func (k *kernelError) Unwrap() error { return k.errno }

// kerr strips the netlink library's "netlink receive:" wrapping so that the
// message reads "file exists", keeping the errno for errors.Is.
func kerr(err error) error {
	var oe *netlink.OpError
	if errors.As(err, &oe) {
		var en unix.Errno
		if errors.As(oe.Err, &en) {
			return &kernelError{errno: en, message: oe.Message}
		}
	}
	return err
}

// maxDumpTries bounds the restarts of a dump the kernel marks interrupted.
const maxDumpTries = 5

var errDumpInterrupted = errors.New("dump interrupted by concurrent changes too many times")

// request sends m and returns the raw reply messages. Dumps come back whole
// (every part is read); a dump the kernel marks interrupted
// (NLM_F_DUMP_INTR) is run again, at most maxDumpTries times, and never
// returned half. Raw bytes are what this package decodes: rtnetlink's
// LinkMessage does not carry the bridge and port attributes in a
// driver-independent way, and decoding every reply into one would cost more
// than the request. ctx's deadline, if any, bounds the wait for the reply.
func request(ctx context.Context, nc *rtnl.Conn, m rtnetlink.Message, typ uint16, flags netlink.HeaderFlags) ([]netlink.Message, error) {
	data, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	for try := 0; try < maxDumpTries; try++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		msgs, err := nc.Execute(ctx, typ, flags, data)
		if err != nil {
			if flags&netlink.Dump != 0 && isErrno(err, unix.EINTR) {
				continue
			}
			return nil, kerr(err)
		}
		interrupted := false
		for _, nm := range msgs {
			if nm.Header.Flags&netlink.DumpInterrupted != 0 {
				interrupted = true
			}
		}
		if !interrupted {
			return msgs, nil
		}
	}
	return nil, errDumpInterrupted
}

// change sends a request that only expects an acknowledgement.
func change(ctx context.Context, nc *rtnl.Conn, m rtnetlink.Message, typ uint16, flags netlink.HeaderFlags) error {
	_, err := request(ctx, nc, m, typ, netlink.Request|netlink.Acknowledge|flags)
	return err
}

// getLink fetches one link by name with a single RTM_GETLINK.
func getLink(ctx context.Context, nc *rtnl.Conn, name string) (linkMsg, error) {
	mask := uint32(rtextFilterSkipStats)
	req := &rtnetlink.LinkMessage{
		Family:     unix.AF_UNSPEC,
		Attributes: &rtnetlink.LinkAttributes{Name: name, ExtMask: &mask},
	}
	return getOne(ctx, nc, req)
}

// getLinkIndex fetches one link by index.
func getLinkIndex(ctx context.Context, nc *rtnl.Conn, index uint32) (linkMsg, error) {
	mask := uint32(rtextFilterSkipStats)
	req := &rtnetlink.LinkMessage{
		Family:     unix.AF_UNSPEC,
		Index:      index,
		Attributes: &rtnetlink.LinkAttributes{ExtMask: &mask},
	}
	return getOne(ctx, nc, req)
}

func getOne(ctx context.Context, nc *rtnl.Conn, req *rtnetlink.LinkMessage) (linkMsg, error) {
	msgs, err := request(ctx, nc, req, unix.RTM_GETLINK, netlink.Request)
	if err != nil {
		return linkMsg{}, err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.RTM_NEWLINK {
			return decodeLink(m.Data)
		}
	}
	return linkMsg{}, errors.New("no link in the kernel's reply")
}

// rawMessage is a request whose bytes this package encodes itself, for
// what rtnetlink's messages cannot say (an AF_BRIDGE link dump: LinkMessage
// always sends family AF_UNSPEC). It embeds a LinkMessage only to satisfy
// rtnetlink.Message, whose marker method is unexported.
type rawMessage struct {
	rtnetlink.LinkMessage
	b []byte
}

// MarshalBinary returns the request's bytes as they are.
func (m *rawMessage) MarshalBinary() ([]byte, error) { return m.b, nil }

// portDumpRequest is an RTM_GETLINK dump request of family AF_BRIDGE: the
// kernel answers with one compact message per bridge port (name, master,
// flags, IFLA_PROTINFO with the IFLA_BRPORT_* attributes), about a quarter
// of the size of a full link message and much cheaper to build.
func portDumpRequest() *rawMessage {
	b := make([]byte, sizeofIfInfomsg)
	b[0] = unix.AF_BRIDGE
	return &rawMessage{b: b}
}

// dumpPorts dumps the ports of every bridge in one AF_BRIDGE request; a
// non-zero master keeps the ports of that bridge only.
func dumpPorts(ctx context.Context, nc *rtnl.Conn, master uint32) ([]linkMsg, error) {
	msgs, err := request(ctx, nc, portDumpRequest(), unix.RTM_GETLINK, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, err
	}
	ports := make([]linkMsg, 0, len(msgs))
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK {
			continue
		}
		l, err := decodeLink(m.Data)
		if err != nil {
			return nil, err
		}
		if l.master == 0 || (master != 0 && l.master != master) {
			continue
		}
		ports = append(ports, l)
	}
	return ports, nil
}

// dumpBridges dumps the bridges of the namespace, filtered by kind in the
// kernel (IFLA_LINKINFO/IFLA_INFO_KIND in the request).
func dumpBridges(ctx context.Context, nc *rtnl.Conn) ([]linkMsg, error) {
	mask := uint32(rtextFilterSkipStats)
	req := &rtnetlink.LinkMessage{
		Family:     unix.AF_UNSPEC,
		Attributes: &rtnetlink.LinkAttributes{ExtMask: &mask, Info: &rtnetlink.LinkInfo{Kind: "bridge"}},
	}
	msgs, err := request(ctx, nc, req, unix.RTM_GETLINK, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, err
	}
	out := make([]linkMsg, 0, len(msgs))
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK {
			continue
		}
		l, err := decodeLink(m.Data)
		if err != nil {
			return nil, err
		}
		if l.kind == "bridge" { // in case the kernel did not filter
			out = append(out, l)
		}
	}
	return out, nil
}

// dumpFDB dumps every AF_BRIDGE neighbour entry of the namespace.
func dumpFDB(ctx context.Context, nc *rtnl.Conn) ([]fdbMsg, error) {
	req := &rtnetlink.NeighMessage{Family: unix.AF_BRIDGE}
	msgs, err := request(ctx, nc, req, unix.RTM_GETNEIGH, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, err
	}
	out := make([]fdbMsg, 0, len(msgs))
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWNEIGH || len(m.Data) == 0 || m.Data[0] != unix.AF_BRIDGE {
			continue
		}
		f, err := decodeFDB(m.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// bridgeData carries the IFLA_BR_* attributes of cfg as IFLA_INFO_DATA. It
// implements rtnetlink.LinkDriver for encoding only and is never registered.
type bridgeData struct{ cfg *Config }

func (d *bridgeData) New() rtnetlink.LinkDriver                 { return &bridgeData{} }
func (d *bridgeData) Encode(ae *netlink.AttributeEncoder) error { return encodeConfig(ae, d.cfg) }
func (d *bridgeData) Decode(*netlink.AttributeDecoder) error    { return nil }
func (d *bridgeData) Kind() string                              { return "bridge" }

// newLinkRequest is the RTM_NEWLINK message that creates bridge name with cfg.
func newLinkRequest(name string, cfg *Config) *rtnetlink.LinkMessage {
	info := &rtnetlink.LinkInfo{Kind: "bridge"}
	if !cfg.empty() {
		info.Data = &bridgeData{cfg: cfg}
	}
	return &rtnetlink.LinkMessage{
		Family:     unix.AF_UNSPEC,
		Attributes: &rtnetlink.LinkAttributes{Name: name, Info: info},
	}
}

// setConfigRequest is the RTM_NEWLINK message that changes bridge index.
func setConfigRequest(index uint32, cfg *Config) *rtnetlink.LinkMessage {
	return &rtnetlink.LinkMessage{
		Family: unix.AF_UNSPEC,
		Index:  index,
		Attributes: &rtnetlink.LinkAttributes{
			Info: &rtnetlink.LinkInfo{Kind: "bridge", Data: &bridgeData{cfg: cfg}},
		},
	}
}

// setMasterRequest is the RTM_NEWLINK message that sets dev's master (0:
// none).
func setMasterRequest(dev, master uint32) *rtnetlink.LinkMessage {
	return &rtnetlink.LinkMessage{
		Family:     unix.AF_UNSPEC,
		Index:      dev,
		Attributes: &rtnetlink.LinkAttributes{Master: &master},
	}
}

// ---- lookups with clear causes ----

// lookupBridge fetches name and checks that it is a bridge.
func lookupBridge(ctx context.Context, nc *rtnl.Conn, name string) (linkMsg, error) {
	l, err := getLink(ctx, nc, name)
	if isErrno(err, unix.ENODEV) {
		return l, detailf(ErrNoDevice, "bridge "+name+" does not exist")
	}
	if err != nil {
		return l, err
	}
	if l.kind != "bridge" {
		what := l.kind
		if what == "" {
			what = "a device without a kind"
		} else {
			what = "a " + what
		}
		return l, detailf(ErrNotBridge, name+" is not a bridge (it is "+what+")")
	}
	return l, nil
}

// lookupDevice fetches a device that is to become or stop being a port.
func lookupDevice(ctx context.Context, nc *rtnl.Conn, name string) (linkMsg, error) {
	l, err := getLink(ctx, nc, name)
	if isErrno(err, unix.ENODEV) {
		return l, detailf(ErrNoDevice, "device "+name+" does not exist")
	}
	return l, err
}

func validateNames(names ...string) error {
	for _, n := range names {
		if err := rtnl.ValidateLinkName(n); err != nil {
			return err
		}
		if n == "" {
			return errors.New("empty name")
		}
	}
	return nil
}

// ---- public operations ----

// Add creates the bridge name with cfg (nil: kernel defaults) in one
// RTM_NEWLINK request: if the kernel refuses a setting, no bridge is left.
// The bridge is created down, like brctl addbr.
func Add(ctx context.Context, c *rtnl.Conn, name string, cfg *Config) error {
	fail := func(err error) error { return &Error{Op: "add", Object: name, Err: err} }
	if err := validateNames(name); err != nil {
		return fail(err)
	}
	if err := cfg.validate(); err != nil {
		return fail(err)
	}
	nc, err := conn(c)
	if err != nil {
		return fail(err)
	}
	if err := change(ctx, nc, newLinkRequest(name, cfg), unix.RTM_NEWLINK, netlink.Create|netlink.Excl); err != nil {
		if isErrno(err, unix.EEXIST) {
			return fail(detailf(ErrExists, "device "+name+" already exists"))
		}
		return fail(err)
	}
	return nil
}

// Delete deletes the bridge name. Unless opts.Force is set it refuses, with
// ErrBusy and without changing anything, a bridge that is up or still has
// ports, and says which. A device that is not a bridge is never deleted.
func Delete(ctx context.Context, c *rtnl.Conn, name string, opts *DeleteOptions) error {
	fail := func(err error) error { return &Error{Op: "delete", Object: name, Err: err} }
	if err := validateNames(name); err != nil {
		return fail(err)
	}
	nc, err := conn(c)
	if err != nil {
		return fail(err)
	}
	br, err := lookupBridge(ctx, nc, name)
	if err != nil {
		return fail(err)
	}
	if opts != nil && opts.DetachPorts && !opts.Force && br.flags&unix.IFF_UP != 0 {
		return fail(detailf(ErrBusy, name+" is still up; can't delete it"))
	}
	if opts == nil || (!opts.Force && !opts.DetachPorts) {
		ports, err := dumpPorts(ctx, nc, br.index)
		if err != nil {
			return fail(err)
		}
		var why []string
		if br.flags&unix.IFF_UP != 0 {
			why = append(why, name+" is up")
		}
		if len(ports) > 0 {
			names := make([]string, len(ports))
			for i, p := range ports {
				names[i] = p.name
			}
			sort.Strings(names)
			why = append(why, name+" still has ports "+strings.Join(names, ", "))
		}
		if len(why) > 0 {
			return fail(detailf(ErrBusy, strings.Join(why, "; ")))
		}
	}
	if err := change(ctx, nc, &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: br.index}, unix.RTM_DELLINK, 0); err != nil {
		return fail(err)
	}
	return nil
}

// AddPort makes dev a port of bridge br, like brctl addif. It checks first,
// and changes nothing when: br or dev does not exist (ErrNoDevice), br is
// not a bridge (ErrNotBridge), dev is br or another bridge (ErrLoop), dev is
// a loopback or not Ethernet (ErrNotEthernet), or dev already has a master
// (ErrInUse, naming the bridge it belongs to). The kernel would otherwise
// silently move a port from one bridge to another.
func AddPort(ctx context.Context, c *rtnl.Conn, br, dev string) error {
	return addPort(ctx, c, nil, br, dev)
}

// Session is a series of bridge operations on one connection that resolves
// each bridge name once: its AddPort asks the kernel for the device only,
// not for the bridge again, which is what a batch attaching hundreds of
// ports to one bridge needs. A remembered bridge that was deleted meanwhile
// is noticed (the kernel refuses the stale index) and looked up afresh; Delete
// through the Session forgets the name. A bridge renamed by someone else
// while the Session lives is not noticed (its old name keeps leading to it):
// use the package functions when other tools rename bridges concurrently.
// A Session is not safe for concurrent use.
type Session struct {
	c       *rtnl.Conn
	bridges map[string]uint32 // name -> ifindex of bridges resolved so far
}

// NewSession returns a Session on c.
func NewSession(c *rtnl.Conn) *Session {
	return &Session{c: c, bridges: map[string]uint32{}}
}

// AddPort is AddPort on the Session's connection, with the bridge's index
// remembered between calls.
func (s *Session) AddPort(ctx context.Context, br, dev string) error {
	return addPort(ctx, s.c, s.bridges, br, dev)
}

// Delete is Delete on the Session's connection; it forgets the bridge.
func (s *Session) Delete(ctx context.Context, name string, opts *DeleteOptions) error {
	delete(s.bridges, name)
	return Delete(ctx, s.c, name, opts)
}

// Close forgets every bridge; the connection stays open (it is the caller's).
func (s *Session) Close() error {
	s.bridges = map[string]uint32{}
	return nil
}

func addPort(ctx context.Context, c *rtnl.Conn, cache map[string]uint32, br, dev string) error {
	fail := func(err error) error { return &Error{Op: "add port", Object: dev + " to " + br, Err: err} }
	if err := validateNames(br, dev); err != nil {
		return fail(err)
	}
	if br == dev {
		return fail(detailf(ErrLoop, "cannot add bridge "+br+" to itself"))
	}
	nc, err := conn(c)
	if err != nil {
		return fail(err)
	}
	for try := 0; ; try++ {
		bidx, cached := cache[br]
		if !cached {
			b, err := lookupBridge(ctx, nc, br)
			if err != nil {
				return fail(err)
			}
			bidx = b.index
			if cache != nil {
				cache[br] = bidx
			}
		}
		d, err := lookupDevice(ctx, nc, dev)
		if err != nil {
			return fail(err)
		}
		if d.kind == "bridge" {
			return fail(detailf(ErrLoop, dev+" is a bridge itself; bridges cannot be ports of bridges"))
		}
		if d.flags&unix.IFF_LOOPBACK != 0 {
			return fail(detailf(ErrNotEthernet, dev+" is a loopback device; it cannot be a bridge port"))
		}
		if d.hwType != unix.ARPHRD_ETHER {
			return fail(detailf(ErrNotEthernet, fmt.Sprintf("%s is not an Ethernet device (link type %d); it cannot be a bridge port", dev, d.hwType)))
		}
		if d.master != 0 {
			if d.master == bidx {
				return fail(detailf(ErrInUse, dev+" is already a port of "+br))
			}
			return fail(detailf(ErrInUse, dev+" is already "+masterDesc(ctx, nc, d)))
		}
		err = change(ctx, nc, setMasterRequest(d.index, bidx), unix.RTM_NEWLINK, 0)
		if err != nil && cached && try == 0 {
			// The remembered bridge may be gone (the kernel says EINVAL
			// or ENODEV for a missing master): look again, once.
			delete(cache, br)
			continue
		}
		if err != nil {
			return fail(err)
		}
		return nil
	}
}

// masterDesc names the master of d for an error message: "a port of bridge
// br1" or "enslaved to bond0".
func masterDesc(ctx context.Context, nc *rtnl.Conn, d linkMsg) string {
	m, err := getLinkIndex(ctx, nc, d.master)
	if err != nil {
		return fmt.Sprintf("enslaved to the device with index %d", d.master)
	}
	if m.kind == "bridge" {
		return "a port of bridge " + m.name + " (remove it from " + m.name + " first)"
	}
	return "enslaved to " + m.name
}

// lookupPort checks the names, finds bridge br and device port, and fails
// with ErrNotPort when port is not a port of br: the common first half of
// every per-port operation.
func lookupPort(ctx context.Context, c *rtnl.Conn, br, port string) (*rtnl.Conn, linkMsg, error) {
	if err := validateNames(br, port); err != nil {
		return nil, linkMsg{}, err
	}
	nc, err := conn(c)
	if err != nil {
		return nil, linkMsg{}, err
	}
	b, err := lookupBridge(ctx, nc, br)
	if err != nil {
		return nil, linkMsg{}, err
	}
	d, err := lookupDevice(ctx, nc, port)
	if err != nil {
		return nil, linkMsg{}, err
	}
	if d.master != b.index {
		return nil, linkMsg{}, detailf(ErrNotPort, port+" is not a port of "+br)
	}
	return nc, d, nil
}

// RemovePort detaches dev from bridge br, like brctl delif. It fails with
// ErrNotPort, changing nothing, when dev is not a port of br.
func RemovePort(ctx context.Context, c *rtnl.Conn, br, dev string) error {
	fail := func(err error) error { return &Error{Op: "remove port", Object: dev + " from " + br, Err: err} }
	nc, d, err := lookupPort(ctx, c, br, dev)
	if err != nil {
		return fail(err)
	}
	if err := change(ctx, nc, setMasterRequest(d.index, 0), unix.RTM_NEWLINK, 0); err != nil {
		return fail(err)
	}
	return nil
}

// Set applies cfg to the existing bridge name in one RTM_NEWLINK request.
func Set(ctx context.Context, c *rtnl.Conn, name string, cfg *Config) error {
	fail := func(err error) error { return &Error{Op: "set", Object: name, Err: err} }
	if err := validateNames(name); err != nil {
		return fail(err)
	}
	if err := cfg.validate(); err != nil {
		return fail(err)
	}
	if cfg.empty() {
		return nil
	}
	nc, err := conn(c)
	if err != nil {
		return fail(err)
	}
	b, err := lookupBridge(ctx, nc, name)
	if err != nil {
		return fail(err)
	}
	if err := change(ctx, nc, setConfigRequest(b.index, cfg), unix.RTM_NEWLINK, 0); err != nil {
		return fail(err)
	}
	return nil
}

// SetSTP turns spanning tree on or off on bridge name.
func SetSTP(ctx context.Context, c *rtnl.Conn, name string, on bool) error {
	return Set(ctx, c, name, &Config{STP: &on})
}

// Get returns bridge name and its ports: one RTM_GETLINK for the bridge and
// one AF_BRIDGE dump of the ports, joined by index, whatever their number.
func Get(ctx context.Context, c *rtnl.Conn, name string) (Bridge, error) {
	fail := func(err error) error { return &Error{Op: "show", Object: name, Err: err} }
	if err := validateNames(name); err != nil {
		return Bridge{}, fail(err)
	}
	nc, err := conn(c)
	if err != nil {
		return Bridge{}, fail(err)
	}
	b, err := lookupBridge(ctx, nc, name)
	if err != nil {
		return Bridge{}, fail(err)
	}
	ports, err := dumpPorts(ctx, nc, b.index)
	if err != nil {
		return Bridge{}, fail(err)
	}
	return assemble(b, ports), nil
}

// List returns every bridge of the namespace with its ports, sorted by name:
// one dump of the bridges (filtered by kind in the kernel) and one AF_BRIDGE
// dump of all ports, joined by index.
func List(ctx context.Context, c *rtnl.Conn) ([]Bridge, error) {
	fail := func(err error) error { return &Error{Op: "list", Err: err} }
	nc, err := conn(c)
	if err != nil {
		return nil, fail(err)
	}
	bridges, err := dumpBridges(ctx, nc)
	if err != nil {
		return nil, fail(err)
	}
	if len(bridges) == 0 {
		return []Bridge{}, nil
	}
	ports, err := dumpPorts(ctx, nc, 0)
	if err != nil {
		return nil, fail(err)
	}
	return join(append(bridges, ports...)), nil
}

// join groups a link dump into bridges and their ports.
func join(links []linkMsg) []Bridge {
	byIndex := map[uint32][]linkMsg{}
	var bridges []linkMsg
	for _, l := range links {
		if l.kind == "bridge" {
			bridges = append(bridges, l)
		}
		// A port: from an AF_BRIDGE dump (IFLA_PROTINFO) or a full one.
		if l.master != 0 && (l.port != nil || l.slaveKind == "bridge") {
			byIndex[l.master] = append(byIndex[l.master], l)
		}
	}
	out := make([]Bridge, 0, len(bridges))
	for _, b := range bridges {
		out = append(out, assemble(b, byIndex[b.index]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// assemble builds a Bridge from its link message and its ports' messages.
func assemble(b linkMsg, ports []linkMsg) Bridge {
	out := Bridge{
		Index:        int(b.index),
		Name:         b.name,
		HardwareAddr: b.addr,
		Up:           b.flags&unix.IFF_UP != 0,
	}
	if a := b.br; a != nil {
		out.ID = a.bridgeID
		out.RootID = a.rootID
		out.STPState = a.stpState
		out.STP = a.stpState != 0
		out.ForwardDelay = fromClock(a.forwardDelay)
		out.HelloTime = fromClock(a.helloTime)
		out.MaxAge = fromClock(a.maxAge)
		out.AgeingTime = fromClock(a.ageingTime)
		out.Priority = a.priority
		out.RootPort, out.RootPathCost = a.rootPort, a.rootPathCost
		out.HelloTimer, out.TCNTimer = fromClock64(a.helloTimer), fromClock64(a.tcnTimer)
		out.TopologyChangeTimer, out.GCTimer = fromClock64(a.topoChangeTimer), fromClock64(a.gcTimer)
		out.TopologyChange, out.TopologyChangeDetected = a.topoChange != 0, a.topoChangeDetect != 0
	}
	out.Ports = make([]Port, 0, len(ports))
	for _, p := range ports {
		if p.master != b.index {
			continue
		}
		port := Port{Index: int(p.index), Name: p.name, Up: p.flags&unix.IFF_UP != 0}
		if a := p.port; a != nil {
			port.No = a.no
			port.State = PortState(a.state)
			port.Priority = a.priority
			port.Cost = a.cost
			port.Hairpin = a.hairpin != 0
			port.ID = a.id
			port.DesignatedRoot, port.DesignatedBridge = a.desRoot, a.desBridge
			port.DesignatedPort, port.DesignatedCost = a.desPort, a.desCost
			port.MessageAgeTimer, port.ForwardDelayTimer = fromClock64(a.msgAgeTimer), fromClock64(a.fwdDelayTimer)
			port.HoldTimer = fromClock64(a.holdTimer)
			port.ConfigPending, port.TopologyChangeAck = a.configPending != 0, a.topoChangeAck != 0
		}
		out.Ports = append(out.Ports, port)
	}
	sort.Slice(out.Ports, func(i, j int) bool { return out.Ports[i].Name < out.Ports[j].Name })
	return out
}

// FDB lists the forwarding database of bridge name: the learned and local
// MAC addresses behind each port, sorted by MAC as brctl showmacs sorts
// them. It takes one link get, one dump of the ports and one AF_BRIDGE
// neighbour dump. Entries for the bridge device's own address (no port) are
// left out, as brctl leaves them out.
func FDB(ctx context.Context, c *rtnl.Conn, name string) ([]FDBEntry, error) {
	fail := func(err error) error { return &Error{Op: "list fdb", Object: name, Err: err} }
	b, err := Get(ctx, c, name)
	if err != nil {
		var be *Error
		if errors.As(err, &be) {
			return nil, fail(be.Err)
		}
		return nil, fail(err)
	}
	nc, err := conn(c)
	if err != nil {
		return nil, fail(err)
	}
	entries, err := dumpFDB(ctx, nc)
	if err != nil {
		return nil, fail(err)
	}
	return fdbEntries(b, entries), nil
}

// fdbEntries keeps the entries of bridge b that sit behind one of its ports
// and joins them with the port list.
func fdbEntries(b Bridge, entries []fdbMsg) []FDBEntry {
	ports := make(map[uint32]Port, len(b.Ports))
	for _, p := range b.Ports {
		ports[uint32(p.Index)] = p
	}
	var out []FDBEntry
	for _, f := range entries {
		if f.master != uint32(b.Index) || f.ifindex == uint32(b.Index) || len(f.mac) != 6 {
			continue
		}
		p, ok := ports[f.ifindex]
		if !ok {
			continue
		}
		e := FDBEntry{
			MAC:       f.mac,
			Port:      p.Name,
			PortIndex: p.Index,
			PortNo:    p.No,
			Local:     f.state&unix.NUD_PERMANENT != 0,
			Static:    f.state&(unix.NUD_PERMANENT|unix.NUD_NOARP) != 0,
			VLAN:      f.vlan,
		}
		if !e.Static {
			e.Ageing = fromClock(f.updated)
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return bytes.Compare(out[i].MAC, out[j].MAC) < 0 })
	return out
}

// fromClock64 converts a 64-bit clock_t timer (1/100 s) to a Duration.
func fromClock64(v uint64) time.Duration {
	return time.Duration(v) * (time.Second / userHZ)
}

// SetHairpin turns hairpin mode of port on bridge br on or off (brctl
// hairpin BR PORT on|off): a frame may then leave through the port it
// came in by. It fails with ErrNotPort, changing nothing, when port is not
// a port of br.
func SetHairpin(ctx context.Context, c *rtnl.Conn, br, port string, on bool) error {
	fail := func(err error) error { return &Error{Op: "set hairpin", Object: port + " on " + br, Err: err} }
	nc, d, err := lookupPort(ctx, c, br, port)
	if err != nil {
		return fail(err)
	}
	if err := change(ctx, nc, hairpinRequest(d.index, on), unix.RTM_SETLINK, 0); err != nil {
		return fail(err)
	}
	return nil
}

// hairpinRequest is the AF_BRIDGE RTM_SETLINK body that sets
// IFLA_BRPORT_MODE of port index in IFLA_PROTINFO, as bridge link set
// dev PORT hairpin on|off sends it.
func hairpinRequest(index uint32, on bool) *rawMessage {
	b := make([]byte, sizeofIfInfomsg, sizeofIfInfomsg+12)
	b[0] = unix.AF_BRIDGE
	binary.NativeEndian.PutUint32(b[4:8], index)
	var v byte
	if on {
		v = 1
	}
	// IFLA_PROTINFO (nested) { IFLA_BRPORT_MODE u8 }, each padded to 4.
	b = binary.NativeEndian.AppendUint16(b, 12)
	b = binary.NativeEndian.AppendUint16(b, unix.IFLA_PROTINFO|unix.NLA_F_NESTED)
	b = binary.NativeEndian.AppendUint16(b, 5)
	b = binary.NativeEndian.AppendUint16(b, unix.IFLA_BRPORT_MODE)
	b = append(b, v, 0, 0, 0)
	return &rawMessage{b: b}
}
