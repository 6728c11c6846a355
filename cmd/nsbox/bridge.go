package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nsbox/nsbox/bridge"
	"github.com/nsbox/nsbox/rtnl"
)

const bridgeUsage = `bridge add BR                  create bridge BR, down (brctl addbr; alias addbr)
bridge del BR                  delete BR, as brctl delbr: refused while BR is up; a bridge
                               that is down goes, its ports detached (alias delbr)
bridge addif BR DEV...         make each DEV a port of BR, in order, stopping at the first
                               failure; refused if DEV is in another bridge
bridge delif BR DEV            detach DEV from BR
bridge show [BR...]            bridges and their ports, in brctl show's layout
bridge showmacs BR             forwarding database, in brctl showmacs' layout
bridge showstp BR              spanning tree state of BR and its ports, as brctl showstp
bridge stp BR on|off           spanning tree on or off
bridge hairpin BR PORT on|off  hairpin mode of a port (brctl hairpin)
bridge setageing BR SECONDS    MAC ageing time (brctl setageing)
bridge setfd BR SECONDS        STP forward delay (brctl setfd)
bridge setbridgeprio BR PRIO   bridge priority 0-65535 (brctl setbridgeprio)`

func bridgeCommand() *command {
	return &command{name: "bridge", quick: true, usage: bridgeUsage, run: runBridge}
}

// bridgeConn returns the batch-shared rtnl connection of the current
// namespace (-n), the one the link, addr and route words use too.
func (e *env) bridgeConn() (*rtnl.Conn, error) { return e.rtnlConn() }

// bridgeSession returns the batch-shared bridge.Session of the current
// namespace, so that a batch of addif lines resolves each bridge once.
func (e *env) bridgeSession() (*bridge.Session, error) {
	c, err := e.bridgeConn()
	if err != nil {
		return nil, err
	}
	key := "bridge:" + e.netns
	r, err := e.cached(key, func() (io.Closer, error) { return bridge.NewSession(c), nil })
	if err != nil {
		return nil, err
	}
	s, ok := r.(*bridge.Session)
	if !ok {
		return nil, fmt.Errorf("internal error: resource %s is a %T, not *bridge.Session", key, r)
	}
	return s, nil
}

// bridgeArgs checks the argument count and the interface names of a
// subcommand: a wrong count or a bad name is a usage error (exit 2).
func bridgeArgs(sub string, args []string, n int, synopsis string) error {
	if len(args) != n {
		return usagef("bridge %s: expected %s, got %d argument(s) (try nsbox -h)", sub, synopsis, len(args))
	}
	for _, a := range args {
		if err := rtnl.ValidateLinkName(a); err != nil {
			return usagef("bridge %s %q: %v", sub, a, errors.Unwrap(err))
		}
	}
	return nil
}

// bridgeOp is one parsed bridge command line: everything is checked
// before anything touches the kernel.
type bridgeOp struct {
	sub   string         // canonical subcommand: add, del, addif, delif, show, showmacs, set
	names []string       // bridge (and device) names, validated
	cfg   *bridge.Config // for set (stp, setageing, setfd, setbridgeprio)
	on    bool           // for hairpin
}

// parseBridgeArgs parses the words after "bridge"; every mistake is a usage
// error (exit 2).
func parseBridgeArgs(args []string) (bridgeOp, error) {
	if len(args) == 0 {
		return bridgeOp{}, usagef("bridge: missing subcommand (add, del, addif, delif, show, showmacs, stp; try nsbox -h)")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "add", "addbr":
		return bridgeOp{sub: "add", names: rest}, bridgeArgs(sub, rest, 1, "BR")
	case "del", "delete", "delbr":
		return bridgeOp{sub: "del", names: rest}, bridgeArgs(sub, rest, 1, "BR")
	case "addif":
		if len(rest) > 2 {
			return bridgeOp{sub: "addif", names: rest}, bridgeArgs(sub, rest, len(rest), "BR DEV...")
		}
		return bridgeOp{sub: "addif", names: rest}, bridgeArgs(sub, rest, 2, "BR DEV...")
	case "hairpin":
		if len(rest) != 3 {
			return bridgeOp{}, usagef("bridge hairpin: expected BR PORT on|off, got %d argument(s)", len(rest))
		}
		on, err := bridgeParseOnOff(rest[2])
		if err != nil {
			return bridgeOp{}, usagef("bridge hairpin: expected on or off, got %q", rest[2])
		}
		return bridgeOp{sub: "hairpin", names: rest[:2], on: on}, bridgeArgs(sub, rest[:2], 2, "BR PORT on|off")
	case "showstp":
		return bridgeOp{sub: "showstp", names: rest}, bridgeArgs(sub, rest, 1, "BR")
	case "delif":
		return bridgeOp{sub: "delif", names: rest}, bridgeArgs(sub, rest, 2, "BR DEV")
	case "show", "list":
		for _, a := range rest {
			if err := rtnl.ValidateLinkName(a); err != nil {
				return bridgeOp{}, usagef("bridge show %q: %v", a, errors.Unwrap(err))
			}
		}
		return bridgeOp{sub: "show", names: rest}, nil
	case "showmacs":
		return bridgeOp{sub: "showmacs", names: rest}, bridgeArgs(sub, rest, 1, "BR")
	case "stp":
		if len(rest) != 2 {
			return bridgeOp{}, usagef("bridge stp: expected BR on|off, got %d argument(s)", len(rest))
		}
		on, err := bridgeParseOnOff(rest[1])
		if err != nil {
			return bridgeOp{}, err
		}
		return bridgeOp{sub: "set", names: rest[:1], cfg: &bridge.Config{STP: &on}}, bridgeArgs(sub, rest[:1], 1, "BR")
	case "setageing", "setfd", "setbridgeprio":
		if len(rest) != 2 {
			return bridgeOp{}, usagef("bridge %s: expected BR VALUE, got %d argument(s)", sub, len(rest))
		}
		if err := bridgeArgs(sub, rest[:1], 1, "BR"); err != nil {
			return bridgeOp{}, err
		}
		cfg, err := bridgeParseSetting(sub, rest[1])
		return bridgeOp{sub: "set", names: rest[:1], cfg: cfg}, err
	}
	return bridgeOp{}, usagef("bridge: unknown subcommand %q (add, del, addif, delif, show, showmacs, stp; try nsbox -h)", sub)
}

func runBridge(ctx context.Context, e *env, args []string) error {
	op, err := parseBridgeArgs(args)
	if err != nil {
		return err
	}
	c, err := e.bridgeConn()
	if err != nil {
		return err
	}
	switch op.sub {
	case "add":
		return bridge.Add(ctx, c, op.names[0], nil)
	case "del":
		s, err := e.bridgeSession()
		if err != nil {
			return err
		}
		// As brctl delbr: a bridge that is down goes with its ports
		// detached; one that is up is refused.
		err = s.Delete(ctx, op.names[0], &bridge.DeleteOptions{DetachPorts: true})
		if errors.Is(err, bridge.ErrBusy) {
			return fmt.Errorf("%w (first: nsbox%s link set %s down)", err, e.bridgeNSFlag(), op.names[0])
		}
		return err
	case "addif":
		s, err := e.bridgeSession()
		if err != nil {
			return err
		}
		// As brctl addif BR DEV...: in order, stopping at the first
		// failure (the devices before it stay ports).
		for _, dev := range op.names[1:] {
			if err := s.AddPort(ctx, op.names[0], dev); err != nil {
				return err
			}
		}
		return nil
	case "hairpin":
		return bridge.SetHairpin(ctx, c, op.names[0], op.names[1], op.on)
	case "showstp":
		return bridgeShowSTP(ctx, e, c, op.names[0])
	case "delif":
		return bridge.RemovePort(ctx, c, op.names[0], op.names[1])
	case "show":
		return bridgeShow(ctx, e, c, op.names)
	case "showmacs":
		return bridgeShowMACs(ctx, e, c, op.names[0])
	case "set":
		return bridge.Set(ctx, c, op.names[0], op.cfg)
	}
	return fmt.Errorf("internal error: bridge subcommand %q parsed but not run", op.sub)
}

// bridgeNSFlag repeats -n NAME for advice printed in error messages.
func (e *env) bridgeNSFlag() string {
	if e.netns == "" {
		return ""
	}
	return " -n " + e.netns
}

// bridgeParseOnOff accepts the words brctl stp accepts.
func bridgeParseOnOff(w string) (bool, error) {
	switch w {
	case "on", "yes", "1":
		return true, nil
	case "off", "no", "0":
		return false, nil
	}
	return false, usagef("bridge stp: expected on or off, got %q", w)
}

// bridgeParseSetting parses the value of setageing/setfd (seconds, fractions
// allowed, as brctl) or setbridgeprio (0-65535).
func bridgeParseSetting(sub, v string) (*bridge.Config, error) {
	if sub == "setbridgeprio" {
		p, err := strconv.ParseUint(v, 0, 16)
		if err != nil {
			return nil, usagef("bridge setbridgeprio: priority %q is not a number from 0 to 65535", v)
		}
		prio := uint16(p)
		return &bridge.Config{Priority: &prio}, nil
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || secs < 0 || secs > 1e7 {
		return nil, usagef("bridge %s: %q is not a number of seconds from 0 to 10000000", sub, v)
	}
	d := time.Duration(secs * float64(time.Second))
	if sub == "setfd" {
		return &bridge.Config{ForwardDelay: &d}, nil
	}
	return &bridge.Config{AgeingTime: &d}, nil
}

// ---- show ----

func bridgeShow(ctx context.Context, e *env, c *rtnl.Conn, names []string) error {
	var bs []bridge.Bridge
	if len(names) == 0 {
		all, err := bridge.List(ctx, c)
		if err != nil {
			return err
		}
		bs = all
	} else {
		for _, n := range names {
			b, err := bridge.Get(ctx, c, n)
			if err != nil {
				return err
			}
			bs = append(bs, b)
		}
	}
	if e.json {
		return bridgeWriteJSON(e.stdout, bridgeListJSON(bs))
	}
	_, err := io.WriteString(e.stdout, bridgeFormatShow(bs))
	return err
}

// bridgeFormatShow lays bridges out exactly as brctl show does (bridge-utils
// 1.7): the name and two tabs, the id, a tab, yes/no and two tabs, then the
// ports one per line, the later ones after seven tabs. Like brctl, it
// prints nothing at all, not even the header, when there is no bridge.
func bridgeFormatShow(bs []bridge.Bridge) string {
	if len(bs) == 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(64 + 32*len(bs))
	b.WriteString("bridge name\tbridge id\t\tSTP enabled\tinterfaces\n")
	for _, br := range bs {
		stp := "no"
		if br.STP {
			stp = "yes"
		}
		b.WriteString(br.Name)
		b.WriteString("\t\t")
		b.WriteString(br.ID.String())
		b.WriteString("\t")
		b.WriteString(stp)
		b.WriteString("\t\t")
		for i, p := range br.Ports {
			if i > 0 {
				b.WriteString("\t\t\t\t\t\t\t")
			}
			b.WriteString(p.Name)
			b.WriteString("\n")
		}
		if len(br.Ports) == 0 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

type bridgePortJSON struct {
	Ifname   string `json:"ifname"`
	Ifindex  int    `json:"ifindex"`
	PortNo   uint16 `json:"port_no"`
	State    string `json:"state"`
	Priority uint16 `json:"priority"`
	Cost     uint32 `json:"cost"`
}

// bridgeJSON follows the keys of ip -j -d link's info_data where they
// exist; times are in 1/100 s as there.
type bridgeJSON struct {
	Ifname       string           `json:"ifname"`
	Ifindex      int              `json:"ifindex"`
	Address      string           `json:"address"`
	Up           bool             `json:"up"`
	BridgeID     string           `json:"bridge_id"`
	RootID       string           `json:"root_id"`
	STPEnabled   bool             `json:"stp_enabled"`
	STPState     uint32           `json:"stp_state"`
	ForwardDelay int64            `json:"forward_delay"`
	HelloTime    int64            `json:"hello_time"`
	MaxAge       int64            `json:"max_age"`
	AgeingTime   int64            `json:"ageing_time"`
	Priority     uint16           `json:"priority"`
	Interfaces   []bridgePortJSON `json:"interfaces"`
}

func bridgeCentis(d time.Duration) int64 { return int64(d / (10 * time.Millisecond)) }

func bridgeListJSON(bs []bridge.Bridge) []bridgeJSON {
	out := make([]bridgeJSON, 0, len(bs))
	for _, b := range bs {
		j := bridgeJSON{
			Ifname: b.Name, Ifindex: b.Index, Address: b.HardwareAddr.String(), Up: b.Up,
			BridgeID: b.ID.String(), RootID: b.RootID.String(),
			STPEnabled: b.STP, STPState: b.STPState,
			ForwardDelay: bridgeCentis(b.ForwardDelay), HelloTime: bridgeCentis(b.HelloTime),
			MaxAge: bridgeCentis(b.MaxAge), AgeingTime: bridgeCentis(b.AgeingTime), Priority: b.Priority,
			Interfaces: make([]bridgePortJSON, 0, len(b.Ports)),
		}
		for _, p := range b.Ports {
			j.Interfaces = append(j.Interfaces, bridgePortJSON{
				Ifname: p.Name, Ifindex: p.Index, PortNo: p.No, State: p.State.String(),
				Priority: p.Priority, Cost: p.Cost,
			})
		}
		out = append(out, j)
	}
	return out
}

// ---- showmacs ----

func bridgeShowMACs(ctx context.Context, e *env, c *rtnl.Conn, name string) error {
	entries, err := bridge.FDB(ctx, c, name)
	if err != nil {
		return err
	}
	if e.json {
		return bridgeWriteJSON(e.stdout, bridgeFDBJSON(entries))
	}
	_, err = io.WriteString(e.stdout, bridgeFormatShowMACs(entries))
	return err
}

// bridgeFormatShowMACs lays entries out exactly as brctl showmacs does: port
// number right-aligned in three, MAC, yes/no and two tabs, and the ageing
// timer as %4d.%02d seconds.
func bridgeFormatShowMACs(entries []bridge.FDBEntry) string {
	var b strings.Builder
	b.WriteString("port no\tmac addr\t\tis local?\tageing timer\n")
	for _, f := range entries {
		local := "no"
		if f.Local {
			local = "yes"
		}
		cs := bridgeCentis(f.Ageing)
		fmt.Fprintf(&b, "%3d\t%s\t%s\t\t%4d.%02d\n", f.PortNo, f.MAC, local, cs/100, cs%100)
	}
	return b.String()
}

type bridgeFDBEntryJSON struct {
	PortNo      uint16  `json:"port_no"`
	Ifname      string  `json:"ifname"`
	MAC         string  `json:"mac"`
	IsLocal     bool    `json:"is_local"`
	Static      bool    `json:"static"`
	AgeingTimer float64 `json:"ageing_timer"` // seconds
	VLAN        uint16  `json:"vlan,omitempty"`
}

func bridgeFDBJSON(entries []bridge.FDBEntry) []bridgeFDBEntryJSON {
	out := make([]bridgeFDBEntryJSON, 0, len(entries))
	for _, f := range entries {
		out = append(out, bridgeFDBEntryJSON{
			PortNo: f.PortNo, Ifname: f.Port, MAC: f.MAC.String(), IsLocal: f.Local, Static: f.Static,
			AgeingTimer: float64(bridgeCentis(f.Ageing)) / 100, VLAN: f.VLAN,
		})
	}
	return out
}

// bridgeWriteJSON prints v as one line of JSON, like ip -j.
func bridgeWriteJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ---- showstp ----

// bridgeShowSTP prints the spanning tree state of bridge name in brctl
// showstp's layout (bridge-utils 1.7 brctl_disp.c): tabs and widths as
// brctl prints them, ports sorted by name, each titled "NAME (PORT NO)".
func bridgeShowSTP(ctx context.Context, e *env, c *rtnl.Conn, name string) error {
	b, err := bridge.Get(ctx, c, name)
	if err != nil {
		return err
	}
	_, err = io.WriteString(e.stdout, bridgeFormatSTP(b))
	return err
}

// stpTimer formats a timer as brctl's br_show_timer: "%4i.%.2i".
func stpTimer(d time.Duration) string {
	cs := d / (10 * time.Millisecond)
	return fmt.Sprintf("%4d.%02d", cs/100, cs%100)
}

func bridgeFormatSTP(b bridge.Bridge) string {
	var s strings.Builder
	fmt.Fprintf(&s, "%s\n", b.Name)
	fmt.Fprintf(&s, " bridge id\t\t%s\n", b.ID)
	fmt.Fprintf(&s, " designated root\t%s\n", b.RootID)
	fmt.Fprintf(&s, " root port\t\t%4d\t\t\tpath cost\t\t%4d\n", b.RootPort, b.RootPathCost)
	// brctl reads max age, hello time and forward delay from sysfs, where
	// the bridge's own values and the ones in use are the same files.
	fmt.Fprintf(&s, " max age\t\t%s\t\t\tbridge max age\t\t%s\n", stpTimer(b.MaxAge), stpTimer(b.MaxAge))
	fmt.Fprintf(&s, " hello time\t\t%s\t\t\tbridge hello time\t%s\n", stpTimer(b.HelloTime), stpTimer(b.HelloTime))
	fmt.Fprintf(&s, " forward delay\t\t%s\t\t\tbridge forward delay\t%s\n", stpTimer(b.ForwardDelay), stpTimer(b.ForwardDelay))
	fmt.Fprintf(&s, " ageing time\t\t%s\n", stpTimer(b.AgeingTime))
	fmt.Fprintf(&s, " hello timer\t\t%s\t\t\ttcn timer\t\t%s\n", stpTimer(b.HelloTimer), stpTimer(b.TCNTimer))
	fmt.Fprintf(&s, " topology change timer\t%s\t\t\tgc timer\t\t%s\n", stpTimer(b.TopologyChangeTimer), stpTimer(b.GCTimer))
	s.WriteString(" flags\t\t\t")
	if b.TopologyChange {
		s.WriteString("TOPOLOGY_CHANGE ")
	}
	if b.TopologyChangeDetected {
		s.WriteString("TOPOLOGY_CHANGE_DETECTED ")
	}
	s.WriteString("\n\n\n")
	for _, p := range b.Ports {
		fmt.Fprintf(&s, "%s (%d)\n", p.Name, p.No) // the port number
		fmt.Fprintf(&s, " port id\t\t%04x\t\t\tstate\t\t%15s\n", p.ID, p.State)
		fmt.Fprintf(&s, " designated root\t%s\tpath cost\t\t%4d\n", p.DesignatedRoot, p.Cost)
		fmt.Fprintf(&s, " designated bridge\t%s\tmessage age timer\t%s\n", p.DesignatedBridge, stpTimer(p.MessageAgeTimer))
		fmt.Fprintf(&s, " designated port\t%04x\t\t\tforward delay timer\t%s\n", p.DesignatedPort, stpTimer(p.ForwardDelayTimer))
		fmt.Fprintf(&s, " designated cost\t%4d\t\t\thold timer\t\t%s\n", p.DesignatedCost, stpTimer(p.HoldTimer))
		s.WriteString(" flags\t\t\t")
		if p.ConfigPending {
			s.WriteString("CONFIG_PENDING ")
		}
		if p.TopologyChangeAck {
			s.WriteString("TOPOLOGY_CHANGE_ACK ")
		}
		s.WriteString("\n")
		if p.Hairpin {
			s.WriteString(" hairpin mode\t\t   1\n")
		}
		s.WriteString("\n")
	}
	return s.String()
}
