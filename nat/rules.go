package nat

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// table is nsbox's table in the ip family.
func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
}

// Chain names inside the table.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainForward     = "forward"
)

// chains returns the table's base chains: DNAT of published ports on the
// way in and for the namespace's own connections, masquerade on the way out,
// and the accepts of forwarding. Policies stay accept: the table only adds.
func chains(t *nftables.Table) []*nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return []*nftables.Chain{
		{Name: chainPrerouting, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept},
		{Name: chainOutput, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept},
		{Name: chainPostrouting, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept},
		{Name: chainForward, Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept},
	}
}

func chainNamed(t *nftables.Table, name string) *nftables.Chain {
	for _, c := range chains(t) {
		if c.Name == name {
			return c
		}
	}
	panic("nat: unknown chain " + name)
}

func comment(c string) []byte { return userdata.AppendString(nil, userdata.TypeComment, c) }

// stateRule records that the table turned IPv4 forwarding on, so that the
// table's deletion turns it off again.
func stateRule(t *nftables.Table) *nftables.Rule {
	return &nftables.Rule{Table: t, Chain: chainNamed(t, chainForward),
		Exprs: []expr.Any{&expr.Counter{}}, UserData: comment("nsbox state forwarding=was-off")}
}

// ifname is an interface name as nftables compares it: NUL-padded to 16.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func metaIfname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name)},
	}
}

// ipField matches the IPv4 source (offset 12) or destination (16) against
// a prefix, or, with op CmpOpNeq, its complement.
func ipField(offset uint32, op expr.CmpOp, p netip.Prefix) []expr.Any {
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
	a := p.Masked().Addr().As4()
	if p.Bits() == 32 {
		return []expr.Any{load, &expr.Cmp{Op: op, Register: 1, Data: a[:]}}
	}
	m := netip.PrefixFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), p.Bits()).Masked().Addr().As4()
	return []expr.Any{
		load,
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m[:], Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: op, Register: 1, Data: a[:]},
	}
}

const (
	offSaddr = 12
	offDaddr = 16
)

// l4port matches the layer 4 protocol and its destination port.
func l4port(proto string, port uint16) []expr.Any {
	p := byte(unix.IPPROTO_TCP)
	if proto == "udp" {
		p = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// ctBits matches a conntrack key (state or status) having any of bits.
func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// ipsDstNat is IPS_DST_NAT of the conntrack status ("ct status dnat").
const ipsDstNat = 1 << 5

func accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// masqRules are the rules of a masquerade entry:
//
//	postrouting: ip saddr NET oifname != BR (or == OUT) counter masquerade   (one per subnet)
//	forward:     iifname BR [oifname OUT] accept
//	forward:     oifname BR ct state established,related accept
func masqRules(t *nftables.Table, m *Masquerade, nets []netip.Prefix, c string) []*nftables.Rule {
	post, fwd := chainNamed(t, chainPostrouting), chainNamed(t, chainForward)
	ud := comment(c)
	var rs []*nftables.Rule
	out := metaIfname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, m.Bridge)
	if m.Out != "" {
		out = metaIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, m.Out)
	}
	for _, n := range nets {
		rs = append(rs, &nftables.Rule{Table: t, Chain: post, UserData: ud,
			Exprs: cat(ipField(offSaddr, expr.CmpOpEq, n), out, []expr.Any{&expr.Counter{}, &expr.Masq{}})})
	}
	in := metaIfname(expr.MetaKeyIIFNAME, expr.CmpOpEq, m.Bridge)
	if m.Out != "" {
		in = cat(in, out)
	}
	rs = append(rs,
		&nftables.Rule{Table: t, Chain: fwd, UserData: ud, Exprs: cat(in, []expr.Any{accept()})},
		&nftables.Rule{Table: t, Chain: fwd, UserData: ud, Exprs: cat(
			metaIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, m.Bridge),
			ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED),
			[]expr.Any{accept()})},
	)
	return rs
}

// publishRules are the rules of a published port:
//
//	prerouting:  (ip daddr HOSTIP | fib daddr type local) PROTO dport HOSTPORT counter dnat to ADDR:PORT
//	output:      the same, loopback destinations excepted
//	postrouting: iifname BR oifname BR ip daddr ADDR PROTO dport PORT ct status dnat masquerade (hairpin)
//	forward:     oifname BR ip daddr ADDR PROTO dport PORT ct status dnat accept
//
// and for a loopback HOSTIP (127.0.0.0/8) only:
//
//	output:      ip daddr HOSTIP PROTO dport HOSTPORT counter dnat to ADDR:PORT
//	postrouting: ip saddr 127.0.0.0/8 oifname BR ip daddr ADDR PROTO dport PORT ct status dnat masquerade
func publishRules(t *nftables.Table, p *Publish, c string) []*nftables.Rule {
	ud := comment(c)
	var dst []expr.Any
	if p.HostIP.IsValid() {
		dst = ipField(offDaddr, expr.CmpOpEq, netip.PrefixFrom(p.HostIP, 32))
	} else {
		dst = []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		}
	}
	a := p.Addr.As4()
	dnat := []expr.Any{
		&expr.Counter{},
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.Port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
	toSandbox := cat(ipField(offDaddr, expr.CmpOpEq, netip.PrefixFrom(p.Addr, 32)), l4port(p.proto(), p.Port), ctBits(expr.CtKeySTATUS, ipsDstNat))
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	if p.HostIP.IsLoopback() {
		// Only the namespace's own connections reach a loopback address;
		// the sandbox answers the bridge's address (masquerade), and the
		// bridge has route_localnet on (Table.ensureLocalnet).
		return []*nftables.Rule{
			{Table: t, Chain: chainNamed(t, chainOutput), UserData: ud,
				Exprs: cat(dst, l4port(p.proto(), p.HostPort), dnat)},
			{Table: t, Chain: chainNamed(t, chainPostrouting), UserData: ud,
				Exprs: cat(ipField(offSaddr, expr.CmpOpEq, loopback), metaIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, p.Bridge),
					toSandbox, []expr.Any{&expr.Masq{}})},
		}
	}
	return []*nftables.Rule{
		{Table: t, Chain: chainNamed(t, chainPrerouting), UserData: ud,
			Exprs: cat(dst, l4port(p.proto(), p.HostPort), dnat)},
		{Table: t, Chain: chainNamed(t, chainOutput), UserData: ud,
			Exprs: cat(ipField(offDaddr, expr.CmpOpNeq, loopback), dst, l4port(p.proto(), p.HostPort), dnat)},
		{Table: t, Chain: chainNamed(t, chainPostrouting), UserData: ud,
			Exprs: cat(metaIfname(expr.MetaKeyIIFNAME, expr.CmpOpEq, p.Bridge), metaIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, p.Bridge),
				toSandbox, []expr.Any{&expr.Masq{}})},
		{Table: t, Chain: chainNamed(t, chainForward), UserData: ud,
			Exprs: cat(metaIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, p.Bridge), toSandbox, []expr.Any{accept()})},
	}
}
