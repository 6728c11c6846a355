package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// phaseTrace prints per-phase timestamps of nsbox dhcp to stderr when
// NSBOX_TRACE=1 (used to profile the one-shot; see bench/dhcp).
type phaseTrace struct {
	w     io.Writer
	start time.Time
}

func newPhaseTrace(w io.Writer) *phaseTrace {
	if os.Getenv("NSBOX_TRACE") != "1" {
		return nil
	}
	return &phaseTrace{w: w, start: time.Now()}
}

func (p *phaseTrace) mark(phase string) {
	if p == nil {
		return
	}
	fmt.Fprintf(p.w, "nsbox: trace: %8.3f ms %s\n", float64(time.Since(p.start).Microseconds())/1000, phase)
}
