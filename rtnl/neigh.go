package rtnl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Neigh is an entry of the neighbour (ARP or NDP) table.
type Neigh struct {
	Index    int
	Dev      string
	Dst      netip.Addr
	LLAddr   net.HardwareAddr // nil: not resolved (INCOMPLETE, FAILED)
	State    uint16           // NUD_* bits (reachable, stale, permanent, ...)
	Flags    uint8            // NTF_* (router, proxy, ...)
	Protocol uint8            // NDA_PROTOCOL, 0 when absent
	// Cache is the entry's NDA_CACHEINFO (ages and references, what ip -s
	// neigh prints); nil when the kernel sent none.
	Cache *NeighCache
	// Probes is NDA_PROBES, the probes sent to resolve the entry; nil
	// when the kernel sent none.
	Probes *uint32

	raw []byte // the kernel's description, for a flush
}

// NeighCache is the kernel's struct nda_cacheinfo: how long ago the entry
// was last used, confirmed and updated, in clock ticks (USER_HZ, as
// sysconf(_SC_CLK_TCK), 100 on Linux), and how many references it has.
type NeighCache struct {
	Confirmed, Used, Updated uint32
	Refcnt                   uint32
}

// NeighQuery selects the entries Neighs and FlushNeighs dump.
type NeighQuery struct {
	Family int    // unix.AF_INET or AF_INET6; 0: both
	Dev    string // "": every device
}

// NeighSpec is an entry to add, replace or delete.
type NeighSpec struct {
	Dst    netip.Addr
	LLAddr net.HardwareAddr // the link-layer address (add/replace); nil: none
	Dev    string
	// State is the NUD_* state of a new entry; 0 means NUD_PERMANENT,
	// as ip neigh add.
	State uint16
	// Router marks an IPv6 neighbour as a router (NTF_ROUTER).
	Router bool
}

const ndaProtocol = 12 // NDA_PROTOCOL

func decodeNeigh(data []byte) (Neigh, error) {
	if len(data) < unix.SizeofNdMsg {
		return Neigh{}, errors.New("short ndmsg")
	}
	n := Neigh{
		Index: int(binary.NativeEndian.Uint32(data[4:8])),
		State: binary.NativeEndian.Uint16(data[8:10]),
		Flags: data[10],
		raw:   data,
	}
	ad, err := netlink.NewAttributeDecoder(data[unix.SizeofNdMsg:])
	if err != nil {
		return Neigh{}, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NDA_DST:
			if a, ok := netip.AddrFromSlice(ad.Bytes()); ok {
				n.Dst = a
			}
		case unix.NDA_LLADDR:
			n.LLAddr = append(net.HardwareAddr(nil), ad.Bytes()...)
		case unix.NDA_CACHEINFO:
			if b := ad.Bytes(); len(b) >= 16 {
				n.Cache = &NeighCache{
					Confirmed: binary.NativeEndian.Uint32(b[0:4]),
					Used:      binary.NativeEndian.Uint32(b[4:8]),
					Updated:   binary.NativeEndian.Uint32(b[8:12]),
					Refcnt:    binary.NativeEndian.Uint32(b[12:16]),
				}
			}
		case unix.NDA_PROBES:
			if b := ad.Bytes(); len(b) == 4 {
				p := binary.NativeEndian.Uint32(b)
				n.Probes = &p
			}
		case ndaProtocol:
			if len(ad.Bytes()) == 1 {
				n.Protocol = ad.Bytes()[0]
			}
		}
	}
	return n, ad.Err()
}

// neighMsg encodes an ndmsg and its attributes.
type neighMsg struct {
	family uint8
	index  int
	state  uint16
	flags  uint8
	dst    netip.Addr
	lladdr net.HardwareAddr
}

func (m neighMsg) MarshalBinary() ([]byte, error) {
	b := make([]byte, unix.SizeofNdMsg)
	b[0] = m.family
	binary.NativeEndian.PutUint32(b[4:8], uint32(m.index))
	binary.NativeEndian.PutUint16(b[8:10], m.state)
	b[10] = m.flags
	ae := netlink.NewAttributeEncoder()
	if m.dst.IsValid() {
		ae.Bytes(unix.NDA_DST, m.dst.AsSlice())
	}
	if m.lladdr != nil {
		ae.Bytes(unix.NDA_LLADDR, m.lladdr)
	}
	if m.index != 0 && !m.dst.IsValid() {
		ae.Uint32(unix.NDA_IFINDEX, uint32(m.index)) // a dump's filter
	}
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return append(b, attrs...), nil
}

// Neighs lists the neighbour entries q selects (all states), in the
// kernel's order, with Dev filled in.
func (c *Conn) Neighs(ctx context.Context, q NeighQuery) ([]Neigh, error) {
	req := neighMsg{family: uint8(q.Family)}
	index := 0
	if q.Dev != "" {
		i, err := c.linkIndex(ctx, q.Dev)
		if err != nil {
			return nil, &Error{Op: "list neighbours", Object: q.Dev, Err: errors.Unwrap(err)}
		}
		index, req.index = i, i
	}
	names, err := c.linkNames(ctx)
	if err != nil {
		return nil, err
	}
	msgs, err := c.dump(ctx, "list neighbours", unix.RTM_GETNEIGH, unix.RTM_NEWNEIGH, req)
	if err != nil {
		return nil, err
	}
	var out []Neigh
	for _, nm := range msgs {
		n, err := decodeNeigh(nm.Data)
		if err != nil {
			return nil, &Error{Op: "list neighbours", Err: fmt.Errorf("decode: %w", err)}
		}
		if (index != 0 && n.Index != index) || !n.Dst.IsValid() {
			continue
		}
		if q.Family != 0 && (q.Family == unix.AF_INET) != n.Dst.Is4() {
			continue
		}
		n.Dev = names[n.Index]
		out = append(out, n)
	}
	return out, nil
}

func (c *Conn) neighRequest(ctx context.Context, op string, s NeighSpec) (neighMsg, string, error) {
	obj := s.Dst.String() + " dev " + s.Dev
	if !s.Dst.IsValid() || s.Dst.Zone() != "" || s.Dst.Is4In6() {
		return neighMsg{}, obj, &Error{Op: op, Object: obj, Err: fmt.Errorf("invalid address: %w", unix.EINVAL)}
	}
	if err := ValidateLinkName(s.Dev); err != nil {
		return neighMsg{}, obj, &Error{Op: op, Object: obj, Err: errors.Unwrap(err)}
	}
	index, err := c.linkIndex(ctx, s.Dev)
	if err != nil {
		return neighMsg{}, obj, &Error{Op: op, Object: obj, Err: errors.Unwrap(err)}
	}
	m := neighMsg{family: unix.AF_INET, index: index, state: s.State, dst: s.Dst, lladdr: s.LLAddr}
	if s.Dst.Is6() {
		m.family = unix.AF_INET6
	}
	if s.Router {
		m.flags |= unix.NTF_ROUTER
	}
	return m, obj, nil
}

// AddNeigh adds an entry (ip neigh add); an existing one fails with an
// error wrapping unix.EEXIST.
func (c *Conn) AddNeigh(ctx context.Context, s NeighSpec) error {
	return c.setNeigh(ctx, "add neighbour", s, netlink.Create|netlink.Excl)
}

// ReplaceNeigh adds an entry or replaces the one for the same address and
// device (ip neigh replace).
func (c *Conn) ReplaceNeigh(ctx context.Context, s NeighSpec) error {
	return c.setNeigh(ctx, "replace neighbour", s, netlink.Create|netlink.Replace)
}

func (c *Conn) setNeigh(ctx context.Context, op string, s NeighSpec, flags netlink.HeaderFlags) error {
	if s.State == 0 {
		s.State = unix.NUD_PERMANENT
	}
	m, obj, err := c.neighRequest(ctx, op, s)
	if err != nil {
		return err
	}
	return c.ack(ctx, op, obj, unix.RTM_NEWNEIGH, flags, m, nil)
}

// DelNeigh deletes the entry for s.Dst on s.Dev; a missing one fails with
// an error wrapping unix.ENOENT.
func (c *Conn) DelNeigh(ctx context.Context, s NeighSpec) error {
	s.LLAddr, s.State = nil, 0
	m, obj, err := c.neighRequest(ctx, "delete neighbour", s)
	if err != nil {
		return err
	}
	return c.ack(ctx, "delete neighbour", obj, unix.RTM_DELNEIGH, 0, m, nil)
}

// FlushNeighs deletes the entries q selects that match accepts (nil:
// all), each with the kernel's own description, in rounds until none is
// left (as ip neigh flush), and returns how many it deleted.
func (c *Conn) FlushNeighs(ctx context.Context, q NeighQuery, match func(Neigh) bool) (int, error) {
	total := 0
	for round := 0; round < 10; round++ {
		ns, err := c.Neighs(ctx, q)
		if err != nil {
			return total, err
		}
		n := 0
		for _, e := range ns {
			if match != nil && !match(e) {
				continue
			}
			_, err := c.exchange(unix.RTM_DELNEIGH, netlink.Request|netlink.Acknowledge, e.raw, nil)
			if err != nil && !errors.Is(err, unix.ENOENT) {
				return total, wrap("flush neighbours", e.Dst.String()+" dev "+e.Dev, err)
			}
			n++
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
	return total, &Error{Op: "flush neighbours", Object: q.Dev, Err: errors.New("entries keep appearing")}
}
