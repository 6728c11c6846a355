package rtnl

import (
	"net/netip"
	"testing"
)

// neighGolden is an RTM_NEWNEIGH body as the kernel sends it in a dump
// (x86_64): ndmsg (AF_INET, ifindex 3, NUD_STALE), NDA_DST 10.200.1.7,
// NDA_LLADDR 02:00:00:00:00:07, NDA_CACHEINFO {confirmed 8100, used 2100,
// updated 2150, refcnt 1}, NDA_PROBES 4.
var neighGolden = []byte{
	2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 1,
	8, 0, 1, 0, 10, 200, 1, 7,
	10, 0, 2, 0, 2, 0, 0, 0, 0, 7, 0, 0,
	20, 0, 3, 0, 0xa4, 0x1f, 0, 0, 0x34, 0x08, 0, 0, 0x66, 0x08, 0, 0, 1, 0, 0, 0,
	8, 0, 4, 0, 4, 0, 0, 0,
}

func TestDecodeNeighCacheInfo(t *testing.T) {
	n, err := decodeNeigh(neighGolden)
	if err != nil {
		t.Fatal(err)
	}
	if n.Index != 3 || n.State != 4 || n.Dst != netip.MustParseAddr("10.200.1.7") || n.LLAddr.String() != "02:00:00:00:00:07" {
		t.Errorf("decoded %+v", n)
	}
	if n.Cache == nil || *n.Cache != (NeighCache{Confirmed: 8100, Used: 2100, Updated: 2150, Refcnt: 1}) {
		t.Errorf("cache %+v, want confirmed 8100 used 2100 updated 2150 refcnt 1", n.Cache)
	}
	if n.Probes == nil || *n.Probes != 4 {
		t.Errorf("probes %v, want 4", n.Probes)
	}
	short := append([]byte(nil), neighGolden[:20]...)
	if n, err := decodeNeigh(short); err != nil || n.Cache != nil || n.Probes != nil {
		t.Errorf("without cacheinfo and probes: %+v %v, want neither", n, err)
	}
}
