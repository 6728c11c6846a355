package main

import (
	"fmt"
	"strings"

	"github.com/jsimonetti/rtnetlink/v2"
)

// The statistics of ip -s (ip/ipaddress.c print_stats64): columns as wide
// as their header or their widest number, a space after every number.

// statsJSON is the stats64 object of ip -j -s.
type statsJSON struct {
	RX rxStatsJSON `json:"rx"`
	TX txStatsJSON `json:"tx"`
}

type rxStatsJSON struct {
	Bytes        uint64  `json:"bytes"`
	Packets      uint64  `json:"packets"`
	Errors       uint64  `json:"errors"`
	Dropped      uint64  `json:"dropped"`
	OverErrors   uint64  `json:"over_errors"`
	Multicast    uint64  `json:"multicast"`
	Compressed   uint64  `json:"compressed,omitempty"`
	LengthErrors *uint64 `json:"length_errors,omitempty"`
	CRCErrors    *uint64 `json:"crc_errors,omitempty"`
	FrameErrors  *uint64 `json:"frame_errors,omitempty"`
	FIFOErrors   *uint64 `json:"fifo_errors,omitempty"`
	MissedErrors *uint64 `json:"missed_errors,omitempty"`
	Nohandler    uint64  `json:"nohandler,omitempty"`
	Otherhost    uint64  `json:"otherhost,omitempty"`
}

type txStatsJSON struct {
	Bytes           uint64  `json:"bytes"`
	Packets         uint64  `json:"packets"`
	Errors          uint64  `json:"errors"`
	Dropped         uint64  `json:"dropped"`
	CarrierErrors   uint64  `json:"carrier_errors"`
	Collisions      uint64  `json:"collisions"`
	Compressed      uint64  `json:"compressed,omitempty"`
	AbortedErrors   *uint64 `json:"aborted_errors,omitempty"`
	FIFOErrors      *uint64 `json:"fifo_errors,omitempty"`
	WindowErrors    *uint64 `json:"window_errors,omitempty"`
	HeartbeatErrors *uint64 `json:"heartbeat_errors,omitempty"`
	CarrierChanges  *uint64 `json:"carrier_changes,omitempty"`
}

func newStatsJSON(s *rtnetlink.LinkStats64, carrierChanges *uint32, level int) *statsJSON {
	j := &statsJSON{
		RX: rxStatsJSON{Bytes: s.RXBytes, Packets: s.RXPackets, Errors: s.RXErrors, Dropped: s.RXDropped,
			OverErrors: s.RXOverErrors, Multicast: s.Multicast, Compressed: s.RXCompressed},
		TX: txStatsJSON{Bytes: s.TXBytes, Packets: s.TXPackets, Errors: s.TXErrors, Dropped: s.TXDropped,
			CarrierErrors: s.TXCarrierErrors, Collisions: s.Collisions, Compressed: s.TXCompressed},
	}
	if level > 1 {
		p := func(v uint64) *uint64 { return &v }
		j.RX.LengthErrors, j.RX.CRCErrors, j.RX.FrameErrors = p(s.RXLengthErrors), p(s.RXCRCErrors), p(s.RXFrameErrors)
		j.RX.FIFOErrors, j.RX.MissedErrors = p(s.RXFIFOErrors), p(s.RXMissedErrors)
		j.RX.Nohandler, j.RX.Otherhost = s.RXNoHandler, s.RXOtherhostDropped
		j.TX.AbortedErrors, j.TX.FIFOErrors = p(s.TXAbortedErrors), p(s.TXFIFOErrors)
		j.TX.WindowErrors, j.TX.HeartbeatErrors = p(s.TXWindowErrors), p(s.TXHeartbeatErrors)
		if carrierChanges != nil {
			j.TX.CarrierChanges = p(uint64(*carrierChanges))
		}
	}
	return j
}

// sizeColumns widens cols to the digits of vals (size_columns).
func sizeColumns(cols []int, vals ...uint64) {
	for i, v := range vals {
		n := len(fmt.Sprint(v))
		if n > cols[i] {
			cols[i] = n
		}
	}
}

// writeStats writes the RX/TX lines of ip -s (level 1) or ip -s -s (2+).
func writeStats(b *strings.Builder, s *rtnetlink.LinkStats64, carrierChanges *uint32, level int) {
	cols := []int{len("*X errors:"), len("packets"), len("errors"), len("dropped"),
		len("heartbt"), len("overrun"), len("compressed"), len("otherhost")}
	var cc uint64
	if carrierChanges != nil {
		cc = uint64(*carrierChanges)
	}
	sizeColumns(cols, s.RXBytes, s.RXPackets, s.RXErrors, s.RXDropped, s.RXMissedErrors, s.Multicast, s.RXCompressed, 0)
	if level > 1 {
		sizeColumns(cols, 0, s.RXLengthErrors, s.RXCRCErrors, s.RXFrameErrors, s.RXFIFOErrors, s.RXOverErrors,
			s.RXNoHandler, s.RXOtherhostDropped)
	}
	sizeColumns(cols, s.TXBytes, s.TXPackets, s.TXErrors, s.TXDropped, s.TXCarrierErrors, s.Collisions, s.TXCompressed, 0)
	if level > 1 {
		sizeColumns(cols, 0, 0, s.TXAbortedErrors, s.TXFIFOErrors, s.TXWindowErrors, s.TXHeartbeatErrors, cc, 0)
	}
	num := func(w int, v uint64) { fmt.Fprintf(b, "%*d ", w, v) }
	cond := func(ok bool, s string) string {
		if ok {
			return s
		}
		return ""
	}
	// counters writes one direction's header and its row: six counters,
	// then compressed, whose column shows only when it is not zero.
	counters := func(dir string, names [6]string, vals [6]uint64, compressed uint64) {
		fmt.Fprintf(b, "    %s: %*s %*s %*s %*s %*s %*s %*s\n", dir, cols[0]-4, names[0], cols[1], names[1],
			cols[2], names[2], cols[3], names[3], cols[4], names[4], cols[5], names[5],
			cols[6], cond(compressed != 0, "compressed"))
		b.WriteString("    ")
		for i, v := range vals {
			num(cols[i], v)
		}
		if compressed != 0 {
			num(cols[6], compressed)
		}
	}
	counters("RX", [6]string{"bytes", "packets", "errors", "dropped", "missed", "mcast"},
		[6]uint64{s.RXBytes, s.RXPackets, s.RXErrors, s.RXDropped, s.RXMissedErrors, s.Multicast}, s.RXCompressed)
	if level > 1 {
		nh, oh := 0, 0
		if s.RXNoHandler != 0 {
			nh = cols[6] + 1
		}
		if s.RXOtherhostDropped != 0 {
			oh = cols[7] + 1
		}
		fmt.Fprintf(b, "\n    RX errors:%*s %*s %*s %*s %*s %*s%*s%*s\n", cols[0]-10, "", cols[1], "length",
			cols[2], "crc", cols[3], "frame", cols[4], "fifo", cols[5], "overrun",
			nh, cond(s.RXNoHandler != 0, " nohandler"), oh, cond(s.RXOtherhostDropped != 0, " otherhost"))
		fmt.Fprintf(b, "%*s", cols[0]+5, "")
		for i, v := range []uint64{s.RXLengthErrors, s.RXCRCErrors, s.RXFrameErrors, s.RXFIFOErrors, s.RXOverErrors} {
			num(cols[i+1], v)
		}
		if s.RXNoHandler != 0 {
			num(cols[6], s.RXNoHandler)
		}
		if s.RXOtherhostDropped != 0 {
			num(cols[7], s.RXOtherhostDropped)
		}
	}
	b.WriteString("\n")
	counters("TX", [6]string{"bytes", "packets", "errors", "dropped", "carrier", "collsns"},
		[6]uint64{s.TXBytes, s.TXPackets, s.TXErrors, s.TXDropped, s.TXCarrierErrors, s.Collisions}, s.TXCompressed)
	if level > 1 {
		fmt.Fprintf(b, "\n    TX errors:%*s %*s %*s %*s %*s %*s\n", cols[0]-10, "", cols[1], "aborted",
			cols[2], "fifo", cols[3], "window", cols[4], "heartbt", cols[5], cond(carrierChanges != nil, "transns"))
		fmt.Fprintf(b, "%*s", cols[0]+5, "")
		for i, v := range []uint64{s.TXAbortedErrors, s.TXFIFOErrors, s.TXWindowErrors, s.TXHeartbeatErrors} {
			num(cols[i+1], v)
		}
		if carrierChanges != nil {
			num(cols[5], cc)
		}
	}
	b.WriteString("\n")
}
