package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/nsbox/nsbox/internal/flock"
)

// The on-disk layout of host-local (containernetworking/plugins,
// plugins/ipam/host-local/backend/disk), so that tools reading host-local's
// state read nsbox-range's too: DATADIR/NETWORK/ holds one file per
// allocated address, named by the address, holding "CONTAINERID\r\nIFNAME",
// and last_reserved_ip.N with the last address given from range set N. The
// folder itself is flock()ed while it changes.
const (
	lastIPPrefix = "last_reserved_ip."
	lineBreak    = "\r\n"
)

// store is one network's allocation folder, locked while open.
type store struct {
	dir  string
	lock *os.File
}

// openStore creates (if needed) and locks dataDir/network.
func openStore(dataDir, network string) (*store, error) {
	dir := filepath.Join(dataDir, network)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ipam: create %s: %w", dir, err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("ipam: open %s: %w", dir, err)
	}
	if err := flock.Exclusive(int(f.Fd())); err != nil {
		f.Close()
		return nil, fmt.Errorf("ipam: lock %s: %w", dir, err)
	}
	return &store{dir: dir, lock: f}, nil
}

// close unlocks the folder.
func (s *store) close() { s.lock.Close() }

// allocation is one file of the store.
type allocation struct {
	addr        netip.Addr
	containerID string
	ifName      string
}

// list returns every allocation in the folder.
func (s *store) list() ([]allocation, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("ipam: read %s: %w", s.dir, err)
	}
	var out []allocation
	for _, e := range ents {
		a, err := netip.ParseAddr(e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("ipam: read allocation %s: %w", e.Name(), err)
		}
		id, ifn, _ := strings.Cut(string(b), lineBreak)
		out = append(out, allocation{addr: a, containerID: strings.TrimSpace(id), ifName: strings.TrimSpace(ifn)})
	}
	return out, nil
}

// reserve creates the file of a, failing quietly (false) when it exists.
func (s *store) reserve(a netip.Addr, id, ifName string, set int) (bool, error) {
	p := filepath.Join(s.dir, a.String())
	f, err := os.OpenFile(p, os.O_RDWR|os.O_EXCL|os.O_CREATE, 0o600)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ipam: reserve %s: %w", a, err)
	}
	_, err = f.WriteString(strings.TrimSpace(id) + lineBreak + ifName)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return false, fmt.Errorf("ipam: reserve %s: %w", a, err)
	}
	last := filepath.Join(s.dir, lastIPPrefix+strconv.Itoa(set))
	if err := os.WriteFile(last, []byte(a.String()), 0o600); err != nil {
		os.Remove(p)
		return false, fmt.Errorf("ipam: reserve %s: %w", a, err)
	}
	return true, nil
}

// lastReserved returns the last address given from range set i, if any.
func (s *store) lastReserved(set int) netip.Addr {
	b, err := os.ReadFile(filepath.Join(s.dir, lastIPPrefix+strconv.Itoa(set)))
	if err != nil {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(strings.TrimSpace(string(b)))
	return a
}

// release removes every allocation of (id, ifName) and returns how many.
func (s *store) release(id, ifName string) (int, error) {
	all, err := s.list()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range all {
		if a.containerID == id && a.ifName == ifName {
			if err := os.Remove(filepath.Join(s.dir, a.addr.String())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return n, fmt.Errorf("ipam: release %s: %w", a.addr, err)
			}
			n++
		}
	}
	return n, nil
}

// errExhausted is returned when a range set has no free address.
var errExhausted = errors.New("no free address")

// allocate gives (id, ifName) one address from each range set, continuing
// after the set's last reserved address as host-local does, never the
// gateway. An address the attachment already holds in a set is reused (an
// ADD that is retried after failing half way). On failure nothing is kept.
func (s *store) allocate(sets [][]span, id, ifName string) ([]*current.IPConfig, error) {
	held, err := s.list()
	if err != nil {
		return nil, err
	}
	taken := map[netip.Addr]bool{}
	for _, a := range held {
		taken[a.addr] = true
	}
	var got []netip.Addr
	var out []*current.IPConfig
	undo := func() {
		for _, a := range got {
			os.Remove(filepath.Join(s.dir, a.String()))
		}
	}
	for i, set := range sets {
		var picked netip.Addr
		var where span
		for _, h := range held {
			if h.containerID == id && h.ifName == ifName {
				for _, sp := range set {
					if sp.contains(h.addr) {
						picked, where = h.addr, sp
					}
				}
			}
		}
		if !picked.IsValid() {
			picked, where, err = s.pick(set, i, id, ifName, taken)
			if err != nil {
				undo()
				return nil, err
			}
			got = append(got, picked)
		}
		ipc := &current.IPConfig{
			Address: net.IPNet{IP: picked.AsSlice(), Mask: net.CIDRMask(where.subnet.Bits(), picked.BitLen())},
		}
		if where.gateway.IsValid() {
			ipc.Gateway = where.gateway.AsSlice()
		}
		out = append(out, ipc)
	}
	return out, nil
}

// pick walks the set from after its last reserved address, wrapping once.
func (s *store) pick(set []span, i int, id, ifName string, taken map[netip.Addr]bool) (netip.Addr, span, error) {
	start, r := set[0].start, 0
	if last := s.lastReserved(i); last.IsValid() {
		for j, sp := range set {
			if sp.contains(last) {
				start, r = last.Next(), j
				if !sp.contains(start) {
					r = (j + 1) % len(set)
					start = set[r].start
				}
			}
		}
	}
	a := start
	for steps := 0; steps < len(set)+1; steps++ {
		sp := set[r]
		for ; a.IsValid() && sp.contains(a); a = a.Next() {
			if taken[a] || a == sp.gateway {
				continue
			}
			ok, err := s.reserve(a, id, ifName, i)
			if err != nil {
				return netip.Addr{}, span{}, err
			}
			if ok {
				return a, sp, nil
			}
		}
		r = (r + 1) % len(set)
		a = set[r].start
	}
	var names []string
	for _, sp := range set {
		names = append(names, sp.start.String()+"-"+sp.end.String())
	}
	return netip.Addr{}, span{}, fmt.Errorf("ipam: %w in range %s", errExhausted, strings.Join(names, ", "))
}

// rangeAdd allocates the addresses of an ADD and returns them as a result
// (with the configured routes and DNS).
func rangeAdd(n *NetConf, id, ifName string) (*current.Result, error) {
	sets, err := n.IPAMConf.rangeSets()
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	s, err := openStore(n.IPAMConf.dataDir(), n.Name)
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	defer s.close()
	ips, err := s.allocate(sets, id, ifName)
	if err != nil {
		if errors.Is(err, errExhausted) {
			// The spec's "try again later": a DEL may free an address.
			return nil, types.NewError(types.ErrTryAgainLater, err.Error(), "network "+n.Name)
		}
		return nil, types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	return &current.Result{CNIVersion: current.ImplementedSpecVersion, IPs: ips, Routes: n.IPAMConf.Routes}, nil
}

// rangeDel releases the addresses of (id, ifName); none held is fine.
func rangeDel(n *NetConf, id, ifName string) error {
	s, err := openStore(n.IPAMConf.dataDir(), n.Name)
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	defer s.close()
	if _, err := s.release(id, ifName); err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	return nil
}

// rangeHeld returns the addresses (id, ifName) holds.
func rangeHeld(n *NetConf, id, ifName string) ([]netip.Addr, error) {
	s, err := openStore(n.IPAMConf.dataDir(), n.Name)
	if err != nil {
		return nil, err
	}
	defer s.close()
	all, err := s.list()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range all {
		if a.containerID == id && a.ifName == ifName {
			out = append(out, a.addr)
		}
	}
	return out, nil
}

// rangeGC removes every allocation whose attachment is not in valid and
// returns how many it removed.
func rangeGC(n *NetConf, valid map[attachKey]bool) (int, error) {
	s, err := openStore(n.IPAMConf.dataDir(), n.Name)
	if err != nil {
		return 0, err
	}
	defer s.close()
	all, err := s.list()
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, a := range all {
		if valid[attachKey{a.containerID, a.ifName}] {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, a.addr.String())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("ipam: gc %s: %w", a.addr, err)
		}
		removed++
	}
	return removed, nil
}

// rangeStatus reports whether an ADD could get an address now.
func rangeStatus(n *NetConf) error {
	sets, err := n.IPAMConf.rangeSets()
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	s, err := openStore(n.IPAMConf.dataDir(), n.Name)
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	defer s.close()
	all, err := s.list()
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	taken := map[netip.Addr]bool{}
	for _, a := range all {
		taken[a.addr] = true
	}
	for i, set := range sets {
		free := false
		for _, sp := range set {
			for a := sp.start; a.IsValid() && sp.contains(a) && !free; a = a.Next() {
				free = !taken[a] && a != sp.gateway
			}
		}
		if !free {
			return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("ipam: range set %d of network %s has no free address", i, n.Name), "")
		}
	}
	return nil
}

// attachKey names one attachment: a container's interface.
type attachKey struct{ containerID, ifName string }
