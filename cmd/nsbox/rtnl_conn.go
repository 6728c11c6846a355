package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// rtnlConn returns the rtnl connection of the current namespace (-n NAME,
// or the caller's), opened once per namespace and shared by the lines of a
// batch (key "rtnl:"+NAME, the same as the bridge command's).
func (e *env) rtnlConn() (*rtnl.Conn, error) {
	key := "rtnl:" + e.netns
	r, err := e.cached(key, func() (io.Closer, error) {
		if e.netns == "" || inJoinedNetns(e.netns) {
			return rtnl.Dial(nil)
		}
		h, err := netns.Open(e.netns)
		if err != nil {
			return nil, nsOpenError(e.netns, err)
		}
		defer h.Close()
		return rtnl.Dial(h)
	})
	if err != nil {
		return nil, err
	}
	c, ok := r.(*rtnl.Conn)
	if !ok {
		return nil, fmt.Errorf("internal error: resource %s is a %T, not *rtnl.Conn", key, r)
	}
	return c, nil
}

// applyChange runs an `add|replace|del|delete` line of a command: parse
// turns sub and args into a request, which goes to add, replace or (any
// other sub) del on the connection of the current namespace. A bad line
// opens nothing.
func applyChange[T any](ctx context.Context, e *env, sub string, args []string,
	parse func(sub string, args []string) (T, error),
	add, replace, del func(c *rtnl.Conn, ctx context.Context, req T) error) error {
	req, err := parse(sub, args)
	if err != nil {
		return err
	}
	c, err := e.rtnlConn()
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		return add(c, ctx, req)
	case "replace":
		return replace(c, ctx, req)
	}
	return del(c, ctx, req)
}

// devOp runs op on the device named by "[dev] DEV", the only arguments of
// cmd, with the connection of the current namespace.
func devOp(ctx context.Context, e *env, cmd string, args []string, op func(c *rtnl.Conn, ctx context.Context, dev string) error) error {
	dev, err := devArg(cmd, args)
	if err != nil {
		return err
	}
	c, err := e.rtnlConn()
	if err != nil {
		return err
	}
	return op(c, ctx, dev)
}

// ownConn opens the namespace given by -n (nil: the caller's) and an rtnl
// connection of its own in it (not the batch's shared one), for a
// long-running word that needs both (dhcp, dhcpd); closeConn closes the
// connection, then the namespace. Errors read "WORD DEV: ...".
func (e *env) ownConn(word, dev string) (ns *netns.Handle, conn *rtnl.Conn, closeConn func(), err error) {
	if e.netns != "" {
		if ns, err = netns.Open(e.netns); err != nil {
			return nil, nil, nil, fmt.Errorf("%s %s: %w", word, dev, nsOpenError(e.netns, err))
		}
	}
	if conn, err = rtnl.Dial(ns); err != nil {
		ns.Close()
		return nil, nil, nil, fmt.Errorf("%s %s: %w", word, dev, err)
	}
	return ns, conn, func() {
		conn.Close()
		ns.Close()
	}, nil
}

// nsOpenError words a failure to open a namespace for the CLI.
func nsOpenError(name string, err error) error {
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netns %s: no such namespace (see nsbox netns list)", name)
	}
	var ne *netns.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("netns %s: %w", name, ne.Err)
	}
	return err
}

// openNS opens the namespace named by a `netns NS` argument: a name in
// /run/netns, a path containing '/', or a pid (resolveNS).
func openNS(arg string) (*netns.Handle, error) {
	ns, err := resolveNS("netns", arg)
	if err != nil {
		return nil, err
	}
	h, err := netns.Open(ns)
	if err != nil {
		return nil, nsOpenError(arg, err)
	}
	return h, nil
}

// checkDev refuses an invalid interface name as a usage error.
func checkDev(cmd, name string) error {
	if err := rtnl.ValidateLinkName(name); err != nil {
		return usagef("%s: %s", cmd, linkNameProblem(name, err))
	}
	return nil
}

// linkNameProblem words what ValidateLinkName found wrong with name, once:
// "empty interface name" or "invalid interface name NAME: why".
func linkNameProblem(name string, err error) string {
	if name == "" {
		return "empty interface name"
	}
	var re *rtnl.Error
	if errors.As(err, &re) {
		err = re.Err
	}
	why := strings.TrimPrefix(err.Error(), rtnl.ErrInvalidName.Error()+": ")
	return "invalid interface name " + quoteIfOdd(name) + ": " + why
}

// parsePrefix parses CIDR (or a bare address, meaning /32 or /128) for
// addresses: host bits may be set.
func parsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("empty address")
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		addrPart, bitsPart, _ := strings.Cut(s, "/")
		a, err := netip.ParseAddr(addrPart)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid address %q", addrPart)
		}
		bits, err := strconv.Atoi(bitsPart)
		if err != nil || bitsPart == "" || bitsPart[0] == '+' || bitsPart[0] == '-' {
			return netip.Prefix{}, fmt.Errorf("invalid prefix length %q", bitsPart)
		}
		if bits < 0 || bits > a.BitLen() {
			return netip.Prefix{}, fmt.Errorf("prefix length %d out of range 0-%d for %s", bits, a.BitLen(), a)
		}
		p = netip.PrefixFrom(a, bits)
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid address %q", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q has a zone", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("IPv4-mapped IPv6 address %q is not supported", s)
	}
	return p, nil
}

// parseDst parses a route destination: "default", or a prefix whose host
// bits are clear (a bare address is a host route).
func parseDst(s string) (netip.Prefix, error) {
	if s == "default" || s == "all" {
		return netip.Prefix{}, nil
	}
	p, err := parsePrefix(s)
	if err != nil {
		return p, err
	}
	if p.Masked() != p {
		return p, fmt.Errorf("prefix %s has host bits set (did you mean %s?)", s, p.Masked())
	}
	return p, nil
}

// parseMAC parses a 6-byte MAC address.
func parseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("invalid MAC address %q (want xx:xx:xx:xx:xx:xx)", s)
	}
	if mac[0]&1 != 0 {
		return nil, fmt.Errorf("MAC address %s is multicast", s)
	}
	return mac, nil
}

// parseMTU parses an MTU: a decimal from 68 (the IPv4 minimum) to 65536 (the
// loopback default); the device may allow less.
func parseMTU(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < 68 || n > 65536 {
		return 0, fmt.Errorf("invalid MTU %q (want 68-65536)", s)
	}
	return uint32(n), nil
}

// printJSON writes v as one line of JSON, as ip -j does, or indented as
// ip -j -p does when -p was given.
func (e *env) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	return e.printRawJSON(b)
}

// printRawJSON writes the encoded JSON b as printJSON does.
func (e *env) printRawJSON(b []byte) error {
	var err error
	if e.pretty {
		if b, err = ipPretty(b); err != nil {
			return fmt.Errorf("encode JSON: %w", err)
		}
		_, err = e.stdout.Write(b)
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

// printRows prints the rows of a show word as ip does: one JSON array with
// -j, else a text line each (with -o, its line breaks as a backslash).
func printRows[T interface{ text() string }](e *env, rows []T) error {
	if e.json {
		return e.printJSON(rows)
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(e.record(r.text() + "\n"))
	}
	_, err := io.WriteString(e.stdout, b.String())
	return err
}

// printFlushed reports a flush of n entries as ip -s does (ip says nothing
// without -s).
func (e *env) printFlushed(n int) {
	switch {
	case e.stats == 0:
	case n == 0:
		fmt.Fprintln(e.stdout, "Nothing to flush.")
	default:
		fmt.Fprintf(e.stdout, "\n*** Round 1, deleting %d entries ***\n*** Flush is complete after 1 round ***\n", n)
	}
}

// linkFlagNames renders link flags in ip's order and words.
func linkFlagNames(flags uint32, masterDown bool) []string {
	var out []string
	if flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING == 0 {
		out = append(out, "NO-CARRIER")
	}
	for _, f := range []struct {
		bit  uint32
		name string
	}{
		{unix.IFF_LOOPBACK, "LOOPBACK"}, {unix.IFF_BROADCAST, "BROADCAST"}, {unix.IFF_POINTOPOINT, "POINTOPOINT"},
		{unix.IFF_MULTICAST, "MULTICAST"}, {unix.IFF_NOARP, "NOARP"}, {unix.IFF_ALLMULTI, "ALLMULTI"},
		{unix.IFF_PROMISC, "PROMISC"}, {unix.IFF_MASTER, "MASTER"}, {unix.IFF_SLAVE, "SLAVE"},
		{unix.IFF_DEBUG, "DEBUG"}, {unix.IFF_DYNAMIC, "DYNAMIC"}, {unix.IFF_AUTOMEDIA, "AUTOMEDIA"},
		{unix.IFF_PORTSEL, "PORTSEL"}, {unix.IFF_NOTRAILERS, "NOTRAILERS"}, {unix.IFF_UP, "UP"},
		{unix.IFF_LOWER_UP, "LOWER_UP"}, {unix.IFF_DORMANT, "DORMANT"}, {unix.IFF_ECHO, "ECHO"},
	} {
		if flags&f.bit != 0 {
			out = append(out, f.name)
		}
	}
	if masterDown {
		out = append(out, "M-DOWN")
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func linkTypeName(t uint16) string {
	switch t {
	case unix.ARPHRD_ETHER:
		return "ether"
	case unix.ARPHRD_LOOPBACK:
		return "loopback"
	case unix.ARPHRD_NONE:
		return "none"
	case unix.ARPHRD_TUNNEL:
		return "ipip"
	case unix.ARPHRD_SIT:
		return "sit"
	case unix.ARPHRD_IPGRE:
		return "gre"
	case unix.ARPHRD_VOID:
		return "void"
	}
	return "[" + strconv.Itoa(int(t)) + "]"
}

func scopeName(s uint8) string {
	switch s {
	case unix.RT_SCOPE_UNIVERSE:
		return "global"
	case unix.RT_SCOPE_SITE:
		return "site"
	case unix.RT_SCOPE_LINK:
		return "link"
	case unix.RT_SCOPE_HOST:
		return "host"
	case unix.RT_SCOPE_NOWHERE:
		return "nowhere"
	}
	return strconv.Itoa(int(s))
}

func protoName(p uint8) string {
	switch p {
	case unix.RTPROT_UNSPEC:
		return "unspec"
	case unix.RTPROT_REDIRECT:
		return "redirect"
	case unix.RTPROT_KERNEL:
		return "kernel"
	case unix.RTPROT_BOOT:
		return "boot"
	case unix.RTPROT_STATIC:
		return "static"
	case unix.RTPROT_RA:
		return "ra"
	case unix.RTPROT_DHCP:
		return "dhcp"
	case unix.RTPROT_BIRD:
		return "bird"
	case unix.RTPROT_BABEL:
		return "babel"
	}
	return strconv.Itoa(int(p))
}
