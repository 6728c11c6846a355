package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/bridge"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

const linkUsage = `link list|show [[dev] DEV]      links, like ip link (-j: ip -j keys)
link add NAME type veth peer name PEER [netns NS]
                               veth pair; with netns the peer is created directly
                               inside NS (a name, a path or a pid)
link add NAME type bridge [forward_delay CS] [hello_time CS] [max_age CS] [ageing_time CS]
         [stp_state 0|1] [priority N] [vlan_filtering 0|1]   (CS: 1/100 s, as ip link)
link add NAME type dummy
link set [dev] DEV SETTING...  up | down | mtu N | netns NS | master BR | nomaster |
                               name NEW | address MAC; several in one line, one request
link del [dev] DEV             delete DEV (both ends of a veth)`

func linkCommand() *command {
	return &command{name: "link", quick: true, usage: linkUsage, run: runLink}
}

func runLink(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return linkShow(ctx, e, nil)
	}
	sub, rest := args[0], args[1:]
	if sub == "ls" {
		sub = "list"
	}
	// ip link's order: "s" is set, "d" delete, "l" list.
	switch subcommand(sub, "add", "set", "change", "delete", "show", "lst", "list", "help") {
	case "list", "show", "lst":
		return linkShow(ctx, e, rest)
	case "add":
		return linkAdd(ctx, e, rest)
	case "set", "change":
		return linkSet(ctx, e, rest)
	case "delete":
		return linkDel(ctx, e, rest)
	case "help":
		fmt.Fprintln(e.stdout, linkUsage)
		return nil
	}
	return usagef("link: unknown subcommand %q (list, show, add, set, del)", sub)
}

// devArg takes "[dev] DEV" as the only arguments of cmd.
func devArg(cmd string, args []string) (string, error) {
	if len(args) > 0 && args[0] == "dev" {
		args = args[1:]
	}
	switch len(args) {
	case 0:
		return "", usagef("%s: missing device name", cmd)
	case 1:
		return args[0], checkDev(cmd, args[0])
	}
	return "", usagef("%s: unexpected argument %q", cmd, args[1])
}

// linkAddArgs is a parsed `link add` line.
type linkAddArgs struct {
	name, kind, peer, peerNS string
	bridge                   *bridge.Config // type bridge's options; nil: none
}

// parseBridgeOptions reads ip link's bridge options (ip-link(8), "type
// bridge"): times in hundredths of a second as ip takes them.
func parseBridgeOptions(cmd string, args []string) (*bridge.Config, error) {
	if len(args) == 0 {
		return nil, nil
	}
	cfg := &bridge.Config{}
	for len(args) > 0 {
		w := args[0]
		if len(args) < 2 {
			return nil, usagef("%s: %s needs a value", cmd, w)
		}
		v := args[1]
		args = args[2:]
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, usagef("%s: invalid %s %q (a number)", cmd, w, v)
		}
		centis := time.Duration(n) * 10 * time.Millisecond
		switch w {
		case "forward_delay":
			cfg.ForwardDelay = &centis
		case "hello_time":
			cfg.HelloTime = &centis
		case "max_age":
			cfg.MaxAge = &centis
		case "ageing_time":
			cfg.AgeingTime = &centis
		case "stp_state":
			st := uint32(n)
			cfg.STPState = &st
		case "priority":
			if n > 0xffff {
				return nil, usagef("%s: invalid priority %q (0-65535)", cmd, v)
			}
			p := uint16(n)
			cfg.Priority = &p
		case "vlan_filtering":
			if n > 1 {
				return nil, usagef("%s: invalid vlan_filtering %q (0 or 1)", cmd, v)
			}
			on := n == 1
			cfg.VLANFiltering = &on
		default:
			return nil, usagef("%s: unknown bridge option %q (forward_delay, hello_time, max_age, ageing_time, stp_state, priority, vlan_filtering)", cmd, w)
		}
	}
	return cfg, nil
}

func parseLinkAdd(args []string) (linkAddArgs, error) {
	var a linkAddArgs
	if len(args) > 0 && args[0] == "name" {
		args = args[1:]
	}
	if len(args) == 0 {
		return a, usagef("link add: missing NAME (link add NAME type veth|bridge|dummy ...)")
	}
	a.name, args = args[0], args[1:]
	if err := checkDev("link add", a.name); err != nil {
		return a, err
	}
	if len(args) < 2 || args[0] != "type" {
		return a, usagef("link add %s: expected \"type veth|bridge|dummy\"", a.name)
	}
	a.kind, args = args[1], args[2:]
	switch a.kind {
	case "bridge":
		cfg, err := parseBridgeOptions("link add "+a.name+" type bridge", args)
		a.bridge = cfg
		return a, err
	case "dummy":
		if len(args) > 0 {
			return a, usagef("link add %s type %s: unexpected argument %q", a.name, a.kind, args[0])
		}
		return a, nil
	case "veth":
	default:
		return a, usagef("link add %s: unsupported type %q (veth, bridge, dummy)", a.name, a.kind)
	}
	if len(args) == 0 {
		return a, usagef("link add %s type veth: missing \"peer name PEER\"", a.name)
	}
	if args[0] != "peer" {
		return a, usagef("link add %s type veth: unexpected argument %q (want peer name PEER)", a.name, args[0])
	}
	args = args[1:]
	if len(args) > 0 && args[0] == "name" {
		args = args[1:]
	}
	if len(args) == 0 {
		return a, usagef("link add %s type veth: missing peer name", a.name)
	}
	a.peer, args = args[0], args[1:]
	if err := checkDev("link add", a.peer); err != nil {
		return a, err
	}
	if a.peer == a.name && len(args) == 0 {
		return a, usagef("link add %s type veth: the peer needs another name (or another namespace)", a.name)
	}
	for len(args) > 0 {
		switch args[0] {
		case "netns":
			if len(args) < 2 || args[1] == "" {
				return a, usagef("link add %s: netns needs a namespace", a.name)
			}
			a.peerNS, args = args[1], args[2:]
		default:
			return a, usagef("link add %s type veth: unexpected argument %q", a.name, args[0])
		}
	}
	return a, nil
}

func linkAdd(ctx context.Context, e *env, args []string) error {
	a, err := parseLinkAdd(args)
	if err != nil {
		return err
	}
	var peerNS *netns.Handle
	if a.peerNS != "" {
		// Open the peer's namespace first: a missing one leaves nothing.
		if peerNS, err = openNS(a.peerNS); err != nil {
			return err
		}
		defer peerNS.Close()
	}
	c, err := e.rtnlConn()
	if err != nil {
		return err
	}
	switch a.kind {
	case "veth":
		return c.AddVeth(ctx, a.name, a.peer, peerNS)
	case "bridge":
		if a.bridge != nil {
			err := bridge.Add(ctx, c, a.name, a.bridge)
			if errors.Is(err, unix.EOPNOTSUPP) && a.bridge.VLANFiltering != nil {
				return fmt.Errorf("%w (vlan_filtering: this kernel has no bridge VLAN filtering, CONFIG_BRIDGE_VLAN_FILTERING)", err)
			}
			return err
		}
		return c.AddBridge(ctx, a.name)
	default:
		return c.AddDummy(ctx, a.name)
	}
}

// linkSetArgs is a parsed `link set` line.
type linkSetArgs struct {
	dev            string
	up             *bool
	mtu            uint32
	mac            net.HardwareAddr
	master         *string
	netns, newName string
}

func parseLinkSet(args []string) (linkSetArgs, error) {
	var s linkSetArgs
	if len(args) > 0 && args[0] == "dev" {
		args = args[1:]
	}
	if len(args) == 0 {
		return s, usagef("link set: missing device name")
	}
	s.dev, args = args[0], args[1:]
	if err := checkDev("link set", s.dev); err != nil {
		return s, err
	}
	if len(args) == 0 {
		return s, usagef("link set %s: nothing to set (up, down, mtu, netns, master, nomaster, name, address)", s.dev)
	}
	need := func(word string) (string, error) {
		if len(args) < 2 {
			return "", usagef("link set %s: %s needs a value", s.dev, word)
		}
		v := args[1]
		args = args[2:]
		return v, nil
	}
	for len(args) > 0 {
		word := args[0]
		switch word {
		case "up", "down":
			v := word == "up"
			s.up = &v
			args = args[1:]
		case "nomaster":
			none := ""
			s.master = &none
			args = args[1:]
		case "mtu":
			v, err := need(word)
			if err != nil {
				return s, err
			}
			if s.mtu, err = parseMTU(v); err != nil {
				return s, usagef("link set %s: %v", s.dev, err)
			}
		case "address":
			v, err := need(word)
			if err != nil {
				return s, err
			}
			if s.mac, err = parseMAC(v); err != nil {
				return s, usagef("link set %s: %v", s.dev, err)
			}
		case "master":
			v, err := need(word)
			if err != nil {
				return s, err
			}
			if err := checkDev("link set "+s.dev+" master", v); err != nil {
				return s, err
			}
			s.master = &v
		case "name":
			v, err := need(word)
			if err != nil {
				return s, err
			}
			if err := checkDev("link set "+s.dev+" name", v); err != nil {
				return s, err
			}
			s.newName = v
		case "netns":
			v, err := need(word)
			if err != nil {
				return s, err
			}
			if v == "" {
				return s, usagef("link set %s: empty namespace", s.dev)
			}
			s.netns = v
		default:
			return s, usagef("link set %s: unknown setting %q (up, down, mtu, netns, master, nomaster, name, address)", s.dev, word)
		}
	}
	return s, nil
}

func linkSet(ctx context.Context, e *env, args []string) error {
	s, err := parseLinkSet(args)
	if err != nil {
		return err
	}
	settings := rtnl.LinkSettings{Up: s.up, MTU: s.mtu, HardwareAddr: s.mac, Master: s.master, Name: s.newName}
	if s.netns != "" {
		h, err := openNS(s.netns)
		if err != nil {
			return err
		}
		defer h.Close()
		settings.NetNS = h
	}
	c, err := e.rtnlConn()
	if err != nil {
		return err
	}
	return c.SetLink(ctx, s.dev, settings)
}

func linkDel(ctx context.Context, e *env, args []string) error {
	return devOp(ctx, e, "link del", args, (*rtnl.Conn).DeleteLink)
}

// linkJSON is one link as ip -j link prints it (same keys, same order).
type linkJSON struct {
	Ifindex     int      `json:"ifindex"`
	Link        string   `json:"link,omitempty"`
	LinkIndex   int      `json:"link_index,omitempty"`
	LinkNetnsid *int     `json:"link_netnsid,omitempty"`
	Ifname      string   `json:"ifname"`
	Flags       []string `json:"flags"`
	MTU         uint32   `json:"mtu"`
	Qdisc       string   `json:"qdisc,omitempty"`
	Master      string   `json:"master,omitempty"`
	Operstate   string   `json:"operstate"`
	Linkmode    string   `json:"linkmode,omitempty"`
	Group       string   `json:"group,omitempty"`
	Txqlen      *uint32  `json:"txqlen,omitempty"`
	LinkType    string   `json:"link_type,omitempty"`
	Address     string   `json:"address,omitempty"`
	Broadcast   string   `json:"broadcast,omitempty"`
	// -d
	Promiscuity *uint32       `json:"promiscuity,omitempty"`
	Allmulti    *uint32       `json:"allmulti,omitempty"`
	MinMTU      *uint32       `json:"min_mtu,omitempty"`
	MaxMTU      *uint32       `json:"max_mtu,omitempty"`
	Linkinfo    *linkinfoJSON `json:"linkinfo,omitempty"`
	AddrGenMode string        `json:"inet6_addr_gen_mode,omitempty"`
	NumTx       *uint32       `json:"num_tx_queues,omitempty"`
	NumRx       *uint32       `json:"num_rx_queues,omitempty"`
	GSOMaxSize  *uint32       `json:"gso_max_size,omitempty"`
	GSOMaxSegs  *uint32       `json:"gso_max_segs,omitempty"`
	TSOMaxSize  *uint32       `json:"tso_max_size,omitempty"`
	TSOMaxSegs  *uint32       `json:"tso_max_segs,omitempty"`
	GROMaxSize  *uint32       `json:"gro_max_size,omitempty"`
	AddrInfo    *[]addrJSON   `json:"addr_info,omitempty"` // set (maybe empty) by addr show
	Stats64     *statsJSON    `json:"stats64,omitempty"`   // -s
}

// linkinfoJSON is the linkinfo object of ip -d -j: the kind, and for a
// bridge its IFLA_BR_* values, for a bridge port its IFLA_BRPORT_* ones.
type linkinfoJSON struct {
	InfoKind      string          `json:"info_kind,omitempty"`
	InfoData      json.RawMessage `json:"info_data,omitempty"`
	InfoSlaveKind string          `json:"info_slave_kind,omitempty"`
	InfoSlaveData json.RawMessage `json:"info_slave_data,omitempty"`

	dataText, slaveText string // the same values as ip's text prints them
}

var addrGenModes = []string{"eui64", "none", "stable_secret", "random"}

// linkinfo is the kind part of ip -d for v, or nil.
func (v linkView) linkinfo() *linkinfoJSON {
	d := v.Details
	if d == nil || (v.Kind == "" && d.SlaveKind == "") {
		return nil
	}
	li := &linkinfoJSON{InfoKind: v.Kind, InfoSlaveKind: d.SlaveKind}
	if v.Kind == "bridge" && d.InfoData != nil {
		var js string
		li.dataText, js = renderDetailAttrs(d.InfoData, bridgeDetailAttrs)
		li.InfoData = json.RawMessage(js)
	}
	if d.SlaveKind == "bridge" && d.SlaveData != nil {
		var js string
		li.slaveText, js = renderDetailAttrs(d.SlaveData, bridgePortDetailAttrs)
		li.InfoSlaveData = json.RawMessage(js)
	}
	return li
}

// addDetails fills the -d keys of j; withLink adds what ip prints for
// link show only (the IPv6 address generation mode).
func (v linkView) addDetails(j *linkJSON, withLink bool) {
	d := v.Details
	if d == nil {
		return
	}
	j.Promiscuity, j.Allmulti, j.MinMTU, j.MaxMTU = d.Promiscuity, d.Allmulti, d.MinMTU, d.MaxMTU
	j.Linkinfo = v.linkinfo()
	if withLink && d.AddrGenMode != nil {
		if int(*d.AddrGenMode) < len(addrGenModes) {
			j.AddrGenMode = addrGenModes[*d.AddrGenMode]
		} else {
			j.AddrGenMode = strconv.Itoa(int(*d.AddrGenMode))
		}
	}
	j.NumTx, j.NumRx, j.GSOMaxSize, j.GSOMaxSegs = d.NumTxQueues, d.NumRxQueues, d.GSOMaxSize, d.GSOMaxSegs
	j.TSOMaxSize, j.TSOMaxSegs, j.GROMaxSize = d.TSOMaxSize, d.TSOMaxSegs, d.GROMaxSize
}

// detailsText writes the -d part of a link's text, as ip's print_linkinfo.
func (j linkJSON) detailsText(b *strings.Builder) {
	u := func(format string, p *uint32) {
		if p != nil {
			fmt.Fprintf(b, format, *p)
		}
	}
	u(" promiscuity %d ", j.Promiscuity)
	u(" allmulti %d ", j.Allmulti)
	u("minmtu %d ", j.MinMTU)
	u("maxmtu %d ", j.MaxMTU)
	if li := j.Linkinfo; li != nil {
		if li.InfoKind != "" {
			fmt.Fprintf(b, "\n    %s %s", li.InfoKind, li.dataText)
		}
		if li.InfoSlaveKind != "" {
			fmt.Fprintf(b, "\n    %s_slave %s", li.InfoSlaveKind, li.slaveText)
		}
	}
	if j.AddrGenMode != "" {
		fmt.Fprintf(b, "addrgenmode %s ", j.AddrGenMode)
	}
	u("numtxqueues %d ", j.NumTx)
	u("numrxqueues %d ", j.NumRx)
	u("gso_max_size %d ", j.GSOMaxSize)
	u("gso_max_segs %d ", j.GSOMaxSegs)
	u("tso_max_size %d ", j.TSOMaxSize)
	u("tso_max_segs %d ", j.TSOMaxSegs)
	u("gro_max_size %d ", j.GROMaxSize)
}

// linkBriefJSON is one link as ip -j -br prints it.
type linkBriefJSON struct {
	Link      string           `json:"link,omitempty"`
	LinkIndex int              `json:"link_index,omitempty"`
	Ifname    string           `json:"ifname"`
	Operstate string           `json:"operstate"`
	Address   string           `json:"address,omitempty"`
	Flags     []string         `json:"flags,omitempty"`
	AddrInfo  *[]addrBriefJSON `json:"addr_info,omitempty"`
}

// linkView is a link with what its rendering needs from its neighbours.
type linkView struct {
	rtnl.Link
	parentName string // the peer's name when it lives in this namespace
	parentDown bool
	peerNSName string // the named namespace of the peer (link-netnsid), if found
}

// resolvePeerNamespaces fills peerNSName for links whose peer lives in
// another namespace, as ip link does: the named namespace whose id (as
// this namespace knows it) is the link's link-netnsid.
func resolvePeerNamespaces(ctx context.Context, c *rtnl.Conn, vs []linkView) {
	need := false
	for _, v := range vs {
		if v.LinkNetNSID >= 0 {
			need = true
		}
	}
	if !need {
		return
	}
	names, err := netns.List()
	if err != nil {
		return
	}
	ids := map[int]string{}
	for _, n := range names {
		h, err := netns.Open(n)
		if err != nil {
			continue
		}
		id, err := c.NetNSID(ctx, h)
		h.Close()
		if err == nil && id >= 0 {
			if _, dup := ids[id]; !dup {
				ids[id] = n
			}
		}
	}
	for i := range vs {
		if vs[i].LinkNetNSID >= 0 {
			vs[i].peerNSName = ids[vs[i].LinkNetNSID]
		}
	}
}

// linkViews pairs every link with its parent (veth peer) in the same list.
func linkViews(links []rtnl.Link) []linkView {
	byIndex := make(map[int]rtnl.Link, len(links))
	for _, l := range links {
		byIndex[l.Index] = l
	}
	vs := make([]linkView, len(links))
	for i, l := range links {
		vs[i].Link = l
		if l.ParentIndex != 0 && l.LinkNetNSID < 0 {
			if p, ok := byIndex[l.ParentIndex]; ok {
				vs[i].parentName = p.Name
				vs[i].parentDown = p.RawFlags&unix.IFF_UP == 0
			}
		}
	}
	return vs
}

func groupName(g uint32, none bool) string {
	if none {
		return ""
	}
	if g == 0 {
		return "default"
	}
	return strconv.FormatUint(uint64(g), 10)
}

func (v linkView) json(withMode bool) linkJSON {
	j := linkJSON{
		Ifindex:   v.Index,
		Ifname:    v.Name,
		Flags:     linkFlagNames(v.RawFlags, v.parentDown),
		MTU:       v.MTU,
		Qdisc:     v.Qdisc,
		Master:    v.Master,
		Operstate: v.OperState,
		Group:     groupName(v.Group, v.NoGroup),
		LinkType:  linkTypeName(v.Type),
	}
	if v.ParentIndex != 0 {
		if v.LinkNetNSID >= 0 {
			id := v.LinkNetNSID
			j.LinkIndex, j.LinkNetnsid = v.ParentIndex, &id
		} else if v.parentName != "" {
			j.Link = v.parentName
		} else {
			j.LinkIndex = v.ParentIndex
		}
	}
	if withMode {
		j.Linkmode = "DEFAULT"
		if v.LinkMode == 1 {
			j.Linkmode = "DORMANT"
		}
	}
	if v.Qdisc != "" || v.TxQueueLen != 0 {
		q := v.TxQueueLen
		j.Txqlen = &q
	}
	if len(v.HardwareAddr) > 0 {
		j.Address = v.HardwareAddr.String()
	}
	if len(v.Broadcast) > 0 {
		j.Broadcast = v.Broadcast.String()
	}
	return j
}

// displayName is the name ip prints for a link: NAME@PEER, NAME@ifN.
func (v linkView) displayName() string {
	name := v.Name
	switch {
	case v.ParentIndex != 0 && v.LinkNetNSID >= 0:
		name += "@if" + strconv.Itoa(v.ParentIndex)
	case v.parentName != "":
		name += "@" + v.parentName
	case v.ParentIndex != 0:
		name += "@if" + strconv.Itoa(v.ParentIndex)
	}
	return name
}

// textOpts are the choices of a link's text rendering.
type textOpts struct {
	mode     bool // "mode DEFAULT" (link show, not addr show)
	noLinkLn bool // leave out the link/ line (ip -4 / -6 addr)
	stats    int  // -s level
	details  bool // -d
}

// brief writes the -br line of a link (link show) or its start (addr show:
// name and state only; the addresses follow).
func (v linkView) brief(w io.Writer, addrs bool) {
	line := fmt.Sprintf("%-16s %-14s ", v.displayName(), v.OperState)
	if !addrs {
		if len(v.HardwareAddr) > 0 {
			line += v.HardwareAddr.String() + " "
		}
		line += "<" + strings.Join(linkFlagNames(v.RawFlags, v.parentDown), ",") + "> \n"
	}
	io.WriteString(w, line)
}

// briefJSON is the -j -br object of a link; addrs adds addr_info (set
// later) instead of the address and flags.
func (v linkView) briefJSON(addrs bool) linkBriefJSON {
	j := linkBriefJSON{Ifname: v.Name, Operstate: v.OperState}
	full := v.json(false)
	j.Link, j.LinkIndex = full.Link, full.LinkIndex
	if !addrs {
		j.Address = full.Address
		j.Flags = full.Flags
	}
	return j
}

// textWith writes the lines ip link (mode) or ip addr prints for a link.
func (v linkView) textWith(w io.Writer, o textOpts) {
	withMode := o.mode
	name := v.displayName()
	j := v.json(withMode)
	var b strings.Builder
	fmt.Fprintf(&b, "%d: %s: <%s> mtu %d", v.Index, name, strings.Join(j.Flags, ","), v.MTU)
	if v.Qdisc != "" {
		fmt.Fprintf(&b, " qdisc %s", v.Qdisc)
	}
	if v.Master != "" {
		fmt.Fprintf(&b, " master %s", v.Master)
	}
	fmt.Fprintf(&b, " state %s", v.OperState)
	if withMode {
		fmt.Fprintf(&b, " mode %s", j.Linkmode)
	}
	if !v.NoGroup {
		fmt.Fprintf(&b, " group %s", j.Group)
	}
	if j.Txqlen != nil {
		fmt.Fprintf(&b, " qlen %d", *j.Txqlen)
	}
	if o.noLinkLn {
		b.WriteString("\n")
		io.WriteString(w, b.String())
		return
	}
	fmt.Fprintf(&b, "\n    link/%s", j.LinkType)
	if j.Address != "" {
		fmt.Fprintf(&b, " %s", j.Address)
	}
	if j.Broadcast != "" {
		fmt.Fprintf(&b, " brd %s", j.Broadcast)
	}
	if v.peerNSName != "" {
		fmt.Fprintf(&b, " link-netns %s", v.peerNSName)
	} else if v.LinkNetNSID >= 0 {
		fmt.Fprintf(&b, " link-netnsid %d", v.LinkNetNSID)
	}
	if o.details {
		dj := j
		v.addDetails(&dj, o.mode)
		dj.detailsText(&b)
	}
	b.WriteString("\n")
	if o.stats > 0 && v.Stats != nil {
		writeStats(&b, v.Stats, v.CarrierChanges, o.stats)
	}
	io.WriteString(w, b.String())
}

// showLinks returns the links to show: every link, or the one named dev
// (looked up directly by name; its peer looked up by index).
func showLinks(ctx context.Context, c *rtnl.Conn, dev string, q rtnl.LinkQuery) ([]linkView, error) {
	if dev == "" {
		links, err := c.QueryLinks(ctx, q)
		if err != nil {
			return nil, err
		}
		return linkViews(links), nil
	}
	q.Family = 0 // ip asks for one link with AF_UNSPEC, whatever -4/-6 say
	l, err := c.QueryLink(ctx, dev, q)
	if err != nil {
		return nil, err
	}
	ls := []rtnl.Link{l}
	if l.ParentIndex != 0 && l.LinkNetNSID < 0 {
		if p, err := c.LinkByIndex(ctx, l.ParentIndex); err == nil {
			ls = append(ls, p)
		}
	}
	return linkViews(ls)[:1], nil
}

// showLinksArgs runs showLinks for the optional "[dev] DEV" of cmd (none:
// every link) on the connection of the current namespace, and returns that
// connection and DEV with the views.
func (e *env) showLinksArgs(ctx context.Context, cmd string, args []string, q rtnl.LinkQuery) (c *rtnl.Conn, dev string, views []linkView, err error) {
	if len(args) > 0 {
		if dev, err = devArg(cmd, args); err != nil {
			return nil, "", nil, err
		}
	}
	if c, err = e.rtnlConn(); err != nil {
		return nil, "", nil, err
	}
	if views, err = showLinks(ctx, c, dev, q); err != nil {
		return nil, "", nil, err
	}
	return c, dev, views, nil
}

func linkShow(ctx context.Context, e *env, args []string) error {
	q := rtnl.LinkQuery{Stats: e.stats > 0 && !e.brief, Details: e.details > 0}
	c, _, views, err := e.showLinksArgs(ctx, "link show", args, q)
	if err != nil {
		return err
	}
	if e.brief {
		if e.json {
			out := make([]linkBriefJSON, len(views))
			for i, v := range views {
				out[i] = v.briefJSON(false)
			}
			return e.printJSON(out)
		}
		for _, v := range views {
			v.brief(e.stdout, false)
		}
		return nil
	}
	if e.json {
		out := make([]linkJSON, len(views))
		for i, v := range views {
			out[i] = v.json(true)
			if e.details > 0 {
				v.addDetails(&out[i], true)
			}
			if e.stats > 0 && v.Stats != nil {
				out[i].Stats64 = newStatsJSON(v.Stats, v.CarrierChanges, e.stats)
			}
		}
		return e.printJSON(out)
	}
	resolvePeerNamespaces(ctx, c, views)
	// One write for the whole listing, as ip's buffered stdout does.
	var out, rec strings.Builder
	for _, v := range views {
		rec.Reset()
		v.textWith(&rec, textOpts{mode: true, stats: e.stats, details: e.details > 0})
		out.WriteString(e.record(rec.String()))
	}
	_, err = io.WriteString(e.stdout, out.String())
	return err
}
