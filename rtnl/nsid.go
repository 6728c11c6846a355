package rtnl

import (
	"context"
	"encoding/binary"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
)

// rawMessage is an already encoded request body.
type rawMessage []byte

func (m rawMessage) MarshalBinary() ([]byte, error) { return m, nil }

// NetNSID returns the id that this connection's namespace has given to the
// namespace ns (what IFLA_LINK_NETNSID refers to), or -1 when it has none.
func (c *Conn) NetNSID(ctx context.Context, ns *netns.Handle) (int, error) {
	// struct rtgenmsg, padded to 4 bytes, then NETNSA_FD.
	b := make([]byte, 4, 12)
	b[0] = unix.AF_UNSPEC
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(unix.NETNSA_FD, uint32(ns.Fd()))
	attrs, err := ae.Encode()
	if err != nil {
		return -1, &Error{Op: "get nsid", Object: ns.Name(), Err: err}
	}
	msgs, err := c.request(ctx, "get nsid", ns.Name(), unix.RTM_GETNSID, 0, rawMessage(append(b, attrs...)), nil)
	if err != nil {
		return -1, err
	}
	for _, m := range msgs {
		if uint16(m.Header.Type) != unix.RTM_NEWNSID || len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			continue
		}
		for ad.Next() {
			if ad.Type() == unix.NETNSA_NSID && len(ad.Bytes()) == 4 {
				return int(int32(binary.NativeEndian.Uint32(ad.Bytes()))), nil
			}
		}
	}
	return -1, nil
}
