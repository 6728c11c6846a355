package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/internal/names"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// Versions returns the CNI spec versions the plugin speaks: every version
// of the library from 0.3.0 up to its current one (1.1.0).
func Versions() version.PluginInfo { return version.VersionsStartingFrom("0.3.0") }

// opTimeout bounds one plugin operation (a DHCP lease has its own, shorter,
// timeout inside it).
const opTimeout = 2 * time.Minute

// Invoked reports whether the process was started as a CNI plugin (the
// runtime set CNI_COMMAND) or as nsbox's DHCP lease keeper.
func Invoked() bool {
	return os.Getenv("CNI_COMMAND") != "" || os.Getenv(keeperEnv) != ""
}

// Main runs the plugin (or the keeper) and returns the exit code: 0, or 1
// after a CNI error object was printed on stdout. Nothing else is written
// to stdout.
func Main() int {
	if dir := os.Getenv(keeperEnv); dir != "" && os.Getenv("CNI_COMMAND") == "" {
		return keeperMain(dir)
	}
	funcs := skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, GC: cmdGC, Status: cmdStatus}
	if e := skel.PluginMainFuncsWithError(funcs, Versions(), "CNI plugin nsbox (bridge, veth, nsbox-range and nsbox-dhcp IPAM)"); e != nil {
		_ = e.Print() // stdout is all a runtime reads; nothing else to tell
		return 1
	}
	return 0
}

// op is the state of one plugin call.
type op struct {
	args *skel.CmdArgs
	conf *NetConf
	log  *logger
}

// start parses the config and opens the log.
func start(cmd string, args *skel.CmdArgs) (*op, error) {
	n, err := ParseConfig(args.StdinData)
	if err != nil {
		return nil, err
	}
	return &op{args: args, conf: n, log: openLog(n.Log, cmd, args)}, nil
}

// finish logs the outcome and turns err into a CNI error object.
func (o *op) finish(err error, t0 time.Time) error {
	defer o.log.close()
	if err == nil {
		o.log.printf("ok in %s", time.Since(t0).Round(time.Microsecond))
		return nil
	}
	e := asCNIError(err)
	o.log.printf("error %d: %s (%s) after %s", e.Code, e.Msg, e.Details, time.Since(t0).Round(time.Microsecond))
	return e
}

// asCNIError keeps a CNI error as it is and gives anything else the code
// that matches its cause.
func asCNIError(err error) *types.Error {
	var e *types.Error
	if errors.As(err, &e) {
		return e
	}
	var nb *notBridgeError
	switch {
	case errors.As(err, &nb):
		return types.NewError(types.ErrInvalidNetworkConfig, "bridge "+err.Error(), "")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EBUSY):
		return types.NewError(types.ErrTryAgainLater, err.Error(), "")
	}
	return types.NewError(types.ErrInternal, err.Error(), "")
}

func cmdAdd(args *skel.CmdArgs) error {
	t0 := time.Now()
	o, err := start("ADD", args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res, err := o.add(ctx)
	if err == nil {
		o.log.printf("%s", describe(res))
		err = types.PrintResult(res, o.conf.CNIVersion)
	}
	return o.finish(err, t0)
}

// add does the work of ADD and undoes it all on failure.
func (o *op) add(ctx context.Context) (_ *current.Result, err error) {
	n, a := o.conf, o.args
	ns, err := openNetns(a.Netns)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_NETNS %q: %v", a.Netns, err), "")
	}
	defer ns.Close()
	in, err := rtnl.Dial(ns)
	if err != nil {
		return nil, fmt.Errorf("dial CNI_NETNS %s: %w", a.Netns, err)
	}
	defer in.Close()
	if _, err := in.LinkByName(ctx, a.IfName); err == nil {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("CNI_IFNAME %s already exists in CNI_NETNS %s", a.IfName, a.Netns), "")
	} else if !errors.Is(err, unix.ENODEV) {
		return nil, fmt.Errorf("look up %s in CNI_NETNS: %w", a.IfName, err)
	}
	host, err := rtnl.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("dial the runtime's namespace: %w", err)
	}
	defer host.Close()

	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	bg := context.WithoutCancel(ctx)
	br, created, err := ensureBridge(ctx, host, n)
	if created { // even if a later setting of the new bridge failed
		undo = append(undo, func() {
			if ports, perr := bridgePorts(bg, host, br.Index, ""); perr == nil && len(ports) == 0 {
				_ = host.DeleteLink(bg, n.Bridge)
			}
		})
	}
	if err != nil {
		return nil, err
	}
	hostIf := names.CNIHostLink(n.Name, a.ContainerID, a.IfName)
	if err := host.DeleteLink(ctx, hostIf); err == nil {
		o.log.printf("removed a stale %s", hostIf)
	}
	if err := host.AddVeth(ctx, hostIf, a.IfName, ns); err != nil {
		return nil, fmt.Errorf("create veth %s/%s: %w", hostIf, a.IfName, err)
	}
	undo = append(undo, func() { _ = host.DeleteLink(bg, hostIf) })
	up, master := true, n.Bridge
	if err := host.SetLink(ctx, hostIf, rtnl.LinkSettings{Master: &master, Up: &up, MTU: uint32(n.MTU)}); err != nil {
		return nil, fmt.Errorf("join %s to %s: %w", hostIf, n.Bridge, err)
	}
	hl, err := host.LinkByName(ctx, hostIf)
	if err != nil {
		return nil, fmt.Errorf("host veth: %w", err)
	}
	if n.HairpinMode {
		if err := setHairpin(ctx, host, hl.Index); err != nil {
			return nil, fmt.Errorf("hairpin mode on %s: %w", hostIf, err)
		}
	}
	if n.Vlan != 0 {
		if err := setPortVlan(ctx, host, hl.Index, uint16(n.Vlan)); err != nil {
			return nil, fmt.Errorf("vlan %d on %s: %w", n.Vlan, hostIf, err)
		}
	}
	if n.MTU > 0 {
		if err := in.SetMTU(ctx, a.IfName, uint32(n.MTU)); err != nil {
			return nil, fmt.Errorf("mtu of %s: %w", a.IfName, err)
		}
	}
	if err := in.SetUp(ctx, a.IfName); err != nil {
		return nil, fmt.Errorf("%s up: %w", a.IfName, err)
	}
	cl, err := in.LinkByName(ctx, a.IfName)
	if err != nil {
		return nil, fmt.Errorf("container veth: %w", err)
	}

	// IPAM. nsbox-dhcp's keeper configures the address itself (it renews
	// it, with the lease's lifetime); the others are configured here.
	var ipam *current.Result
	switch n.IPAMConf.Type {
	case IPAMRange:
		ipam, err = rangeAdd(n, a.ContainerID, a.IfName)
		if err == nil {
			undo = append(undo, func() { _ = rangeDel(n, a.ContainerID, a.IfName) })
		}
	case IPAMDHCP:
		// Both ends must pass packets before the first DISCOVER.
		if err := waitReady(ctx, host, hostIf); err != nil {
			return nil, err
		}
		if err := waitReady(ctx, in, a.IfName); err != nil {
			return nil, err
		}
		ipam, err = dhcpAdd(ctx, o)
		if err == nil {
			undo = append(undo, func() { _ = dhcpDel(bg, o) })
		}
	default:
		ipam, err = delegateAdd(ctx, n, a.StdinData)
		if err == nil {
			undo = append(undo, func() { _ = delegate(bg, "DEL", n, a.StdinData) })
		}
	}
	if err != nil {
		return nil, err
	}
	if n.IPAMConf.Type != IPAMDHCP && n.IsDefaultGateway {
		addDefaultRoutes(ipam)
	}
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: n.Bridge, Mac: br.HardwareAddr.String()},
			{Name: hostIf, Mac: hl.HardwareAddr.String()},
			{Name: a.IfName, Mac: cl.HardwareAddr.String(), Sandbox: a.Netns},
		},
		Routes: ipam.Routes,
		DNS:    n.DNS,
	}
	if res.DNS.IsEmpty() {
		res.DNS = ipam.DNS
	}
	for _, ip := range ipam.IPs {
		ip.Interface = current.Int(2)
		res.IPs = append(res.IPs, ip)
	}
	if n.IPAMConf.Type != IPAMDHCP {
		if err := configure(ctx, in, a.IfName, res); err != nil {
			return nil, err
		}
	}
	v6 := false
	for _, ip := range res.IPs {
		if ip.Address.IP.To4() == nil {
			v6 = true
		}
	}
	if n.IsGateway && n.IPAMConf.Type != IPAMDHCP {
		for _, ip := range res.IPs {
			if ip.Gateway == nil {
				continue
			}
			ones, _ := ip.Address.Mask.Size()
			gw := prefixOf(ip.Gateway, ones)
			if err := host.AddAddr(ctx, n.Bridge, gw, nil); err != nil && !errors.Is(err, unix.EEXIST) {
				return nil, fmt.Errorf("gateway %s on %s: %w", gw, n.Bridge, err)
			}
		}
		if err := enableForwarding(v6); err != nil {
			return nil, err
		}
	}
	if n.IPMasq {
		if err := addMasq(ctx, n); err != nil {
			return nil, err
		}
		undo = append(undo, func() { o.masqIfLast(bg, host, br.Index) })
	}
	return mergePrev(n, res)
}

// masqIfLast removes the network's masquerade once it has no veth left on
// the bridge.
func (o *op) masqIfLast(ctx context.Context, host *rtnl.Conn, bridgeIndex int) {
	ports, err := bridgePorts(ctx, host, bridgeIndex, names.CNINetTag(o.conf.Name))
	if err != nil || len(ports) > 0 {
		return
	}
	if err := delMasq(ctx, o.conf); err != nil {
		o.log.printf("masquerade: %v", err)
	}
}

// addDefaultRoutes adds a default route via the gateway of each family that
// has one and no default route yet.
func addDefaultRoutes(r *current.Result) {
	has := map[bool]bool{}
	for _, rt := range r.Routes {
		if ones, _ := rt.Dst.Mask.Size(); ones == 0 {
			has[rt.Dst.IP.To4() != nil] = true
		}
	}
	for _, ip := range r.IPs {
		v4 := ip.Address.IP.To4() != nil
		if ip.Gateway == nil || has[v4] {
			continue
		}
		dst := net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		if !v4 {
			dst = net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		}
		r.Routes = append(r.Routes, &types.Route{Dst: dst, GW: ip.Gateway})
		has[v4] = true
	}
}

// configure puts the result's addresses and routes on the container's
// interface. A route without a gateway goes via the gateway of its family,
// as the reference plugins' ipam.ConfigureIface does.
func configure(ctx context.Context, in *rtnl.Conn, ifName string, r *current.Result) error {
	gws := map[bool]netip.Addr{}
	for _, ip := range r.IPs {
		ones, _ := ip.Address.Mask.Size()
		p := prefixOf(ip.Address.IP, ones)
		if err := in.AddAddr(ctx, ifName, p, nil); err != nil {
			return fmt.Errorf("address %s on %s: %w", p, ifName, err)
		}
		if ip.Gateway != nil {
			g, _ := netip.AddrFromSlice(ip.Gateway)
			if _, ok := gws[p.Addr().Is4()]; !ok {
				gws[p.Addr().Is4()] = g.Unmap()
			}
		}
	}
	for _, rt := range r.Routes {
		ones, _ := rt.Dst.Mask.Size()
		dst := prefixOf(rt.Dst.IP, ones)
		route := rtnl.Route{Dst: dst, Dev: ifName, Metric: uint32(rt.Priority)}
		if ones == 0 {
			route.Dst = netip.Prefix{}
			route.Family = unix.AF_INET
			if !dst.Addr().Is4() {
				route.Family = unix.AF_INET6
			}
		}
		if rt.GW != nil {
			g, _ := netip.AddrFromSlice(rt.GW)
			route.Gateway = g.Unmap()
		} else {
			route.Gateway = gws[dst.Addr().Is4()]
		}
		if err := in.AddRoute(ctx, route); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("route %s on %s: %w", route, ifName, err)
		}
	}
	return nil
}

// mergePrev puts the result after a previous plugin's, as the spec says
// for a plugin that is not first in a chain.
func mergePrev(n *NetConf, res *current.Result) (*current.Result, error) {
	if n.PrevResult == nil {
		return res, nil
	}
	prev, err := current.NewResultFromResult(n.PrevResult)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "prevResult: "+err.Error(), "")
	}
	off := len(prev.Interfaces)
	prev.Interfaces = append(prev.Interfaces, res.Interfaces...)
	for _, ip := range res.IPs {
		if ip.Interface != nil {
			ip.Interface = current.Int(*ip.Interface + off)
		}
		prev.IPs = append(prev.IPs, ip)
	}
	prev.Routes = append(prev.Routes, res.Routes...)
	if prev.DNS.IsEmpty() {
		prev.DNS = res.DNS
	}
	return prev, nil
}

// describe is the log line of a result.
func describe(r *current.Result) string {
	var s []string
	for _, ip := range r.IPs {
		s = append(s, ip.Address.String())
	}
	return "addresses " + strings.Join(s, ",")
}

func cmdDel(args *skel.CmdArgs) error {
	t0 := time.Now()
	o, err := start("DEL", args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return o.finish(o.del(ctx), t0)
}

// del releases the address and deletes the veth. Everything already gone
// is fine, so a second DEL, a DEL after the namespace died and a DEL of a
// failed ADD all succeed.
func (o *op) del(ctx context.Context) error {
	n, a := o.conf, o.args
	var errs []error
	switch n.IPAMConf.Type {
	case IPAMRange:
		errs = append(errs, rangeDel(n, a.ContainerID, a.IfName))
	case IPAMDHCP:
		errs = append(errs, dhcpDel(ctx, o))
	default:
		errs = append(errs, delegate(ctx, "DEL", n, a.StdinData))
	}
	host, err := rtnl.Dial(nil)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("dial the runtime's namespace: %w", err))...)
	}
	defer host.Close()
	hostIf := names.CNIHostLink(n.Name, a.ContainerID, a.IfName)
	if l, err := host.LinkByName(ctx, hostIf); err == nil {
		if err := unlink(ctx, ifinfomsg(unix.AF_UNSPEC, l.Index, 0, 0, nil), []string{hostIf}); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, err)
		}
	} else if !errors.Is(err, unix.ENODEV) {
		errs = append(errs, fmt.Errorf("delete %s: %w", hostIf, err))
	}
	if n.IPMasq {
		if br, err := host.LinkByName(ctx, n.Bridge); err == nil {
			o.masqIfLast(ctx, host, br.Index)
		} else if errors.Is(err, unix.ENODEV) {
			if err := delMasq(ctx, n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return firstCNIError(errs)
}

// firstCNIError returns the first CNI error among errs, or joins the rest.
func firstCNIError(errs []error) error {
	var plain []error
	for _, e := range errs {
		if e == nil {
			continue
		}
		var ce *types.Error
		if errors.As(e, &ce) {
			return ce
		}
		plain = append(plain, e)
	}
	return errors.Join(plain...)
}

func cmdCheck(args *skel.CmdArgs) error {
	t0 := time.Now()
	o, err := start("CHECK", args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return o.finish(o.check(ctx), t0)
}

// check verifies that the attachment is still as ADD left it: the veth on
// the bridge, the interface in the namespace with the prevResult's
// addresses, and the IPAM's record of them.
func (o *op) check(ctx context.Context) error {
	n, a := o.conf, o.args
	if n.PrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs a prevResult", "")
	}
	prev, err := current.NewResultFromResult(n.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "prevResult: "+err.Error(), "")
	}
	host, err := rtnl.Dial(nil)
	if err != nil {
		return err
	}
	defer host.Close()
	hostIf := names.CNIHostLink(n.Name, a.ContainerID, a.IfName)
	hl, err := host.LinkByName(ctx, hostIf)
	if err != nil {
		return fmt.Errorf("host veth %s: %w", hostIf, err)
	}
	br, err := host.LinkByName(ctx, n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	if hl.MasterIndex != br.Index {
		return fmt.Errorf("host veth %s is not a port of %s", hostIf, n.Bridge)
	}
	ns, err := netns.Open(a.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_NETNS %q: %v", a.Netns, err), "")
	}
	defer ns.Close()
	in, err := rtnl.Dial(ns)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := in.LinkByName(ctx, a.IfName); err != nil {
		return fmt.Errorf("%s in CNI_NETNS: %w", a.IfName, err)
	}
	addrs, err := in.Addrs(ctx, a.IfName)
	if err != nil {
		return err
	}
	have := map[netip.Prefix]bool{}
	for _, ad := range addrs {
		have[ad.Prefix] = true
	}
	for _, ip := range prev.IPs {
		if ip.Interface == nil || *ip.Interface >= len(prev.Interfaces) {
			continue
		}
		itf := prev.Interfaces[*ip.Interface]
		if itf.Name != a.IfName || itf.Sandbox == "" {
			continue
		}
		ones, _ := ip.Address.Mask.Size()
		p := prefixOf(ip.Address.IP, ones)
		if !have[p] {
			return fmt.Errorf("%s in CNI_NETNS lacks address %s", a.IfName, p)
		}
	}
	switch n.IPAMConf.Type {
	case IPAMRange:
		held, err := rangeHeld(n, a.ContainerID, a.IfName)
		if err != nil {
			return err
		}
		if len(held) == 0 {
			return fmt.Errorf("ipam: no address of %s/%s in %s", a.ContainerID, a.IfName, n.IPAMConf.dataDir())
		}
	case IPAMDHCP:
		return dhcpCheck(ctx, o)
	default:
		return delegate(ctx, "CHECK", n, a.StdinData)
	}
	return nil
}

func cmdGC(args *skel.CmdArgs) error {
	t0 := time.Now()
	o, err := start("GC", args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return o.finish(o.gc(ctx), t0)
}

// gc removes the network's allocations, leases and veths whose attachment
// is not in cni.dev/valid-attachments.
func (o *op) gc(ctx context.Context) error {
	n := o.conf
	valid := map[attachKey]bool{}
	keep := map[string]bool{}
	for _, v := range n.ValidAttachments {
		valid[attachKey{v.ContainerID, v.IfName}] = true
		keep[names.CNIHostLink(n.Name, v.ContainerID, v.IfName)] = true
	}
	var errs []error
	t0 := time.Now()
	switch n.IPAMConf.Type {
	case IPAMRange:
		removed, err := rangeGC(n, valid)
		o.log.printf("gc: %d allocations removed in %s", removed, time.Since(t0).Round(time.Microsecond))
		errs = append(errs, err)
	case IPAMDHCP:
		errs = append(errs, dhcpGC(ctx, o, n.ValidAttachments))
	default:
		if err := delegate(ctx, "GC", n, o.args.StdinData); err != nil {
			o.log.printf("gc: delegated ipam %s: %v", n.IPAMConf.Type, err)
		}
	}
	tl := time.Now()
	host, err := rtnl.Dial(nil)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer host.Close()
	br, err := host.LinkByName(ctx, n.Bridge)
	if errors.Is(err, unix.ENODEV) {
		return firstCNIError(errs)
	}
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	all, err := host.Links(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var stale []rtnl.Link
	kept := 0
	for _, l := range all {
		if l.MasterIndex != br.Index || !strings.HasPrefix(l.Name, names.CNINetTag(n.Name)) {
			continue
		}
		if keep[l.Name] {
			kept++
			continue
		}
		stale = append(stale, l)
	}
	t1 := time.Now()
	if err := deleteLinks(ctx, host, stale, all); err != nil {
		errs = append(errs, fmt.Errorf("gc: %w", err))
	}
	o.log.printf("gc: %d veths removed in %s (listing took %s), %d kept", len(stale), time.Since(t1).Round(time.Microsecond), t1.Sub(tl).Round(time.Microsecond), kept)
	if n.IPMasq {
		o.masqIfLast(ctx, host, br.Index)
	}
	return firstCNIError(errs)
}

func cmdStatus(args *skel.CmdArgs) error {
	t0 := time.Now()
	o, err := start("STATUS", args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return o.finish(o.status(ctx), t0)
}

// status says whether an ADD could succeed now: code 50 when it cannot.
func (o *op) status(ctx context.Context) error {
	n := o.conf
	host, err := rtnl.Dial(nil)
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "netlink in the runtime's namespace: "+err.Error(), "")
	}
	defer host.Close()
	if br, err := host.LinkByName(ctx, n.Bridge); err == nil && br.Kind != "bridge" {
		return types.NewError(types.ErrPluginNotAvailable, (&notBridgeError{n.Bridge, br.Kind}).Error(), "")
	}
	switch n.IPAMConf.Type {
	case IPAMRange:
		return rangeStatus(n)
	case IPAMDHCP:
		return dhcpStatus(ctx, o)
	default:
		err := delegate(ctx, "STATUS", n, o.args.StdinData)
		var ce *types.Error
		if errors.As(err, &ce) && ce.Code == types.ErrIncompatibleCNIVersion {
			return nil // an IPAM plugin older than STATUS has no status to give
		}
		return err
	}
}

// delegateAdd runs ADD of the ipam plugin named by the config's type.
func delegateAdd(ctx context.Context, n *NetConf, conf []byte) (*current.Result, error) {
	path, conf, _, err := delegateConf(ctx, n, conf)
	if err != nil {
		return nil, err
	}
	r, err := delegateAddResult(ctx, path, conf)
	if err != nil {
		return nil, delegateError(n, "ADD", err)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("ipam %s: result: %v", n.IPAMConf.Type, err), "")
	}
	return res, nil
}

// delegate runs DEL, CHECK, GC or STATUS of the delegated ipam plugin.
func delegate(ctx context.Context, verb string, n *NetConf, conf []byte) error {
	path, conf, older, err := delegateConf(ctx, n, conf)
	if err != nil {
		return err
	}
	if older && (verb == "GC" || verb == "STATUS") {
		// A plugin older than spec 1.1 has neither: nothing to collect,
		// no status to give.
		return nil
	}
	if _, err = delegateRun(ctx, path, verb, conf); err != nil {
		return delegateError(n, verb, err)
	}
	return nil
}

// delegateConf lowers the config's cniVersion to the newest one the
// delegate speaks when it does not speak the config's own (Debian's
// reference plugins stop at 1.0.0), so that a 1.1.0 network can use them;
// their result is converted back by the library. older says the version
// was lowered. It returns the plugin's path too (found once, here).
func delegateConf(ctx context.Context, n *NetConf, conf []byte) (path string, _ []byte, older bool, _ error) {
	path, err := findPlugin(n.IPAMConf.Type)
	if err != nil {
		return "", nil, false, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("ipam: type %q: %v", n.IPAMConf.Type, err), "")
	}
	info, err := pluginVersions(ctx, path)
	if err != nil {
		return "", nil, false, types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("ipam %s: version: %v", n.IPAMConf.Type, err), "")
	}
	best := ""
	for _, v := range info.SupportedVersions() {
		if v == n.CNIVersion {
			return path, conf, false, nil
		}
		if ok, _ := version.GreaterThan(n.CNIVersion, v); ok {
			if best == "" {
				best = v
			} else if gt, _ := version.GreaterThan(v, best); gt {
				best = v
			}
		}
	}
	if best == "" {
		return path, conf, false, nil // let the delegate say what is wrong
	}
	var m map[string]any
	if err := json.Unmarshal(conf, &m); err != nil {
		return "", nil, false, types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	m["cniVersion"] = best
	delete(m, "prevResult")
	b, err := json.Marshal(m)
	return path, b, true, err
}

// delegateError keeps the delegate's CNI error and names the plugin.
func delegateError(n *NetConf, verb string, err error) error {
	var ce *types.Error
	if errors.As(err, &ce) {
		return types.NewError(ce.Code, fmt.Sprintf("ipam %s %s: %s", n.IPAMConf.Type, verb, ce.Msg), ce.Details)
	}
	return types.NewError(types.ErrInternal, fmt.Sprintf("ipam %s %s: %v", n.IPAMConf.Type, verb, err), "")
}
