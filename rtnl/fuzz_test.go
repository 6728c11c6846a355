package rtnl

import (
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"
)

func seedLink(f *testing.F) {
	for _, m := range []*rtnetlink.LinkMessage{
		{Index: 1, Flags: 0x49, Attributes: &rtnetlink.LinkAttributes{Name: "lo", MTU: 65536}},
		{Index: 5, Attributes: &rtnetlink.LinkAttributes{Name: "veth0", Address: []byte{2, 0, 0, 0, 0, 1},
			Info: &rtnetlink.LinkInfo{Kind: "veth"}}},
	} {
		b, err := m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 16))
}

// FuzzDecodeLink feeds arbitrary RTM_NEWLINK bodies to the link decoder:
// it must return an error or a Link, never panic.
func FuzzDecodeLink(f *testing.F) {
	seedLink(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := decodeLink(b)
		if err == nil && l.Index < 0 {
			t.Fatalf("negative index %d", l.Index)
		}
	})
}

// FuzzDecodeAddr feeds arbitrary RTM_NEWADDR bodies to the address decoder.
func FuzzDecodeAddr(f *testing.F) {
	b, _ := (&rtnetlink.AddressMessage{Family: 2, PrefixLength: 24, Index: 2,
		Attributes: &rtnetlink.AddressAttributes{Address: []byte{10, 0, 0, 1}, Local: []byte{10, 0, 0, 1}}}).MarshalBinary()
	f.Add(b)
	f.Add([]byte{10, 64, 0, 0, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAddr(b)
		if err == nil && a.Prefix.IsValid() && a.Prefix.Bits() > a.Prefix.Addr().BitLen() {
			t.Fatalf("prefix %v longer than its address", a.Prefix)
		}
	})
}

// FuzzDecodeRoute feeds arbitrary RTM_NEWROUTE bodies to the route decoder.
func FuzzDecodeRoute(f *testing.F) {
	b, _ := (&rtnetlink.RouteMessage{Family: 2, DstLength: 16, Table: 254,
		Attributes: rtnetlink.RouteAttributes{Dst: []byte{10, 1, 0, 0}, Gateway: []byte{10, 0, 0, 1}, OutIface: 2}}).MarshalBinary()
	f.Add(b)
	f.Add(make([]byte, 12))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = decodeRoute(b)
	})
}

// FuzzDecodeNeigh feeds arbitrary RTM_NEWNEIGH bodies to the neighbour
// decoder.
func FuzzDecodeNeigh(f *testing.F) {
	f.Add(neighGolden)
	f.Add(make([]byte, 12))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeNeigh(b)
		if err == nil && n.Dst.IsValid() && n.Dst.BitLen() != 32 && n.Dst.BitLen() != 128 {
			t.Fatalf("address %v", n.Dst)
		}
	})
}

// FuzzDecodeLinkName: the names-only decoder of linkNames agrees with the
// full one on every body both accept (it refuses malformed attributes the
// full one lets pass).
func FuzzDecodeLinkName(f *testing.F) {
	seedLink(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := decodeLink(b)
		if err != nil {
			return
		}
		index, name, err := decodeLinkName(b)
		if err == nil && (index != l.Index || name != l.Name) {
			t.Fatalf("decodeLinkName: %d %q %v; decodeLink: %d %q", index, name, err, l.Index, l.Name)
		}
	})
}
