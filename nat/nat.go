package nat

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// TableName is the name of nsbox's table (family ip) in a bridge's namespace.
const TableName = "nsbox"

// LockPath is the file whose flock serialises the changes of every nsbox
// process to its tables.
const LockPath = "/run/nsbox/nat.lock"

// ErrNotFound is wrapped by the removals of an entry that does not exist.
var ErrNotFound = errors.New("no such entry")

// ErrPortTaken is wrapped by Publish when the host port is already published.
var ErrPortTaken = errors.New("host port already published")

// Error is the one error shape of this package: the operation, the object
// (a bridge, a port) and the cause.
type Error struct {
	Op     string // "masquerade", "unmasquerade", "publish", "unpublish", "list", "collect"
	Object string // e.g. "br0" or "tcp 0.0.0.0:8080"
	Err    error
}

// Error renders "nat: OP OBJECT: cause".
func (e *Error) Error() string {
	if e.Object == "" {
		return "nat: " + e.Op + ": " + e.Err.Error()
	}
	return "nat: " + e.Op + " " + e.Object + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Owner is who holds an entry. The zero Owner holds it until it is removed
// explicitly; a process owner's entries are removed by the next operation
// on the table after that process is gone.
type Owner struct {
	Pid   int    // 0: nobody (the entry stays until removed)
	Start uint64 // the process's start time (/proc/PID/stat field 22), so a reused pid is not mistaken for it
	Name  string // what messages call the holder (a sandbox or pool name); may be ""
}

// Process returns the Owner for the running process pid, called name in
// messages.
func Process(pid int, name string) (Owner, error) {
	st, err := startTime(pid)
	if err != nil {
		return Owner{}, fmt.Errorf("nat: owner pid %d: %w", pid, err)
	}
	return Owner{Pid: pid, Start: st, Name: name}, nil
}

// Self returns the calling process as an Owner called name.
func Self(name string) (Owner, error) { return Process(os.Getpid(), name) }

// String names the owner for messages: "sandbox NAME (pid N)", "pid N" or
// "nsbox nat add" for the zero owner.
func (o Owner) String() string {
	switch {
	case o.Pid == 0 && o.Name == "":
		return "nsbox nat add"
	case o.Pid == 0:
		return o.Name
	case o.Name == "":
		return "pid " + strconv.Itoa(o.Pid)
	}
	return o.Name + " (pid " + strconv.Itoa(o.Pid) + ")"
}

// alive reports whether the owning process still runs (the zero owner
// always does).
func (o Owner) alive() bool {
	if o.Pid == 0 {
		return true
	}
	st, err := startTime(o.Pid)
	return err == nil && st == o.Start
}

// startTime reads field 22 of /proc/PID/stat.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces and ')'
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Masquerade is the egress of a bridge: its IPv4 subnets leave with the
// address of the outgoing interface.
type Masquerade struct {
	Bridge string // the bridge whose subnets are masqueraded
	Out    string // the outgoing interface; "" means any interface but Bridge
	Owner  Owner
}

// Publish is a published port: connections to HostIP:HostPort (or any
// local address of the namespace when HostIP is invalid, loopback aside)
// go to Addr:Port on Bridge.
type Publish struct {
	Bridge   string     // the bridge that Addr is on (for the hairpin of its other sandboxes)
	Proto    string     // "tcp" or "udp"; "" means "tcp"
	HostIP   netip.Addr // invalid: every local address
	HostPort uint16
	Addr     netip.Addr // the sandbox's IPv4 address
	Port     uint16
	Owner    Owner
}

func (p *Publish) proto() string {
	if p.Proto == "" {
		return "tcp"
	}
	return p.Proto
}

// hostString renders "tcp 0.0.0.0:8080" for messages.
func (p *Publish) hostString() string {
	ip := "0.0.0.0"
	if p.HostIP.IsValid() {
		ip = p.HostIP.String()
	}
	return p.proto() + " " + ip + ":" + strconv.Itoa(int(p.HostPort))
}

func (p *Publish) validate() error {
	if err := rtnl.ValidateLinkName(p.Bridge); err != nil {
		return err
	}
	switch {
	case p.proto() != "tcp" && p.proto() != "udp":
		return fmt.Errorf("protocol %q is neither tcp nor udp", p.Proto)
	case p.HostPort == 0 || p.Port == 0:
		return errors.New("port 0 cannot be published")
	case !p.Addr.Is4():
		return fmt.Errorf("sandbox address %v is not IPv4", p.Addr)
	case p.HostIP.IsValid() && !p.HostIP.Is4():
		return fmt.Errorf("host address %v is not IPv4", p.HostIP)
	}
	return nil
}

// Entry is one thing nsbox added, as List reports it.
type Entry struct {
	Kind      string   `json:"kind"` // "masquerade" or "publish"
	Bridge    string   `json:"bridge"`
	Out       string   `json:"out,omitempty"`
	Subnets   []string `json:"subnets,omitempty"`
	Proto     string   `json:"proto,omitempty"`
	HostIP    string   `json:"host_ip,omitempty"`
	HostPort  int      `json:"host_port,omitempty"`
	Addr      string   `json:"addr,omitempty"`
	Port      int      `json:"port,omitempty"`
	OwnerPid  int      `json:"owner_pid,omitempty"`
	OwnerName string   `json:"owner_name,omitempty"`
	Rules     int      `json:"rules"` // how many rules it consists of

	owner Owner
	key   string // identity: kind + bridge/port + owner
	// localnet is, for a state rule "nsbox state localnet=BR", the bridge
	// whose route_localnet the table turned on (for a published loopback
	// address).
	localnet string
}

// Owner returns who holds the entry.
func (e *Entry) Owner() Owner { return e.owner }

// The comment of every rule: "nsbox KIND k=v&k=v...". The state rule
// records what the first entry changed outside the table.
const (
	kindMasq    = "masquerade"
	kindPublish = "publish"
	kindState   = "state"
)

func ownerValues(v url.Values, o Owner) {
	if o.Pid != 0 {
		v.Set("pid", strconv.Itoa(o.Pid))
		v.Set("start", strconv.FormatUint(o.Start, 10))
	}
	if o.Name != "" {
		v.Set("name", o.Name)
	}
}

func masqComment(m *Masquerade, subnets []netip.Prefix) string {
	v := url.Values{}
	v.Set("br", m.Bridge)
	if m.Out != "" {
		v.Set("out", m.Out)
	}
	nets := make([]string, len(subnets))
	for i, s := range subnets {
		nets[i] = s.String()
	}
	v.Set("net", strings.Join(nets, ","))
	ownerValues(v, m.Owner)
	return "nsbox " + kindMasq + " " + v.Encode()
}

func publishComment(p *Publish) string {
	v := url.Values{}
	v.Set("br", p.Bridge)
	v.Set("proto", p.proto())
	if p.HostIP.IsValid() {
		v.Set("hostip", p.HostIP.String())
	}
	v.Set("hostport", strconv.Itoa(int(p.HostPort)))
	v.Set("addr", p.Addr.String())
	v.Set("port", strconv.Itoa(int(p.Port)))
	ownerValues(v, p.Owner)
	return "nsbox " + kindPublish + " " + v.Encode()
}

// parseComment turns a rule comment back into its entry; ok is false for a
// rule nsbox did not write.
func parseComment(c string) (e Entry, ok bool) {
	f := strings.SplitN(c, " ", 3)
	if len(f) != 3 || f[0] != "nsbox" {
		return Entry{}, false
	}
	v, err := url.ParseQuery(f[2])
	if err != nil {
		return Entry{}, false
	}
	e.Kind = f[1]
	e.Bridge = v.Get("br")
	e.Out = v.Get("out")
	if n := v.Get("net"); n != "" {
		e.Subnets = strings.Split(n, ",")
	}
	e.Proto = v.Get("proto")
	e.HostIP = v.Get("hostip")
	e.HostPort, _ = strconv.Atoi(v.Get("hostport"))
	e.Addr = v.Get("addr")
	e.Port, _ = strconv.Atoi(v.Get("port"))
	e.owner.Pid, _ = strconv.Atoi(v.Get("pid"))
	e.owner.Start, _ = strconv.ParseUint(v.Get("start"), 10, 64)
	e.owner.Name = v.Get("name")
	e.OwnerPid, e.OwnerName = e.owner.Pid, e.owner.Name
	ownerKey := strconv.Itoa(e.owner.Pid) + "/" + strconv.FormatUint(e.owner.Start, 10)
	switch e.Kind {
	case kindMasq:
		e.key = kindMasq + " " + e.Bridge + " " + ownerKey
	case kindPublish:
		e.key = kindPublish + " " + e.Proto + " " + e.HostIP + ":" + strconv.Itoa(e.HostPort) + " " + ownerKey
	case kindState:
		e.key = kindState + " " + f[2]
		e.localnet = v.Get("localnet")
	default:
		return Entry{}, false
	}
	return e, true
}

// Table is nsbox's nftables table in one network namespace. It holds no
// netlink socket between calls; Close releases its namespace handle.
type Table struct {
	ns       *netns.Handle
	lockPath string
}

// Open returns the table of the namespace ns (nil: the caller's). ns may be
// closed afterwards: the Table keeps its own handle.
func Open(ns *netns.Handle) (*Table, error) {
	var h *netns.Handle
	var err error
	if ns == nil {
		h, err = netns.Current()
	} else {
		h, err = netns.Open("/proc/self/fd/" + strconv.Itoa(ns.Fd()))
	}
	if err != nil {
		return nil, fmt.Errorf("nat: open namespace: %w", err)
	}
	return &Table{ns: h, lockPath: LockPath}, nil
}

// Close releases the namespace handle.
func (t *Table) Close() error { return t.ns.Close() }

// lock takes the cross-process lock, waiting at most as long as ctx allows.
func (t *Table) lock(ctx context.Context) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(t.lockPath), 0o755); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	f, err := os.OpenFile(t.lockPath, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	wait := 100 * time.Microsecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", t.lockPath, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", t.lockPath, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// state is the table as read under the lock.
type state struct {
	conn   *nftables.Conn
	exists bool
	// missing names the base chains the existing table lacks (someone
	// deleted them); ensure re-adds only those.
	missing map[string]bool
	rules   []*nftables.Rule
	parsed  []Entry // parallel to rules
	// adding: the batch adds an entry (Publish, AddMasquerade), so the
	// table stays even when every entry read was collected.
	adding bool
	// addingLocalnet is the bridge of a loopback address the batch
	// publishes (its route_localnet stays on).
	addingLocalnet string
}

// read lists the table on one netlink socket that the caller closes with
// state.close. One socket, not google/nftables' default of one per
// request: each socket is made inside the namespace (a thread's setns
// there and back), and closing a netfilter socket waits for nf_tables to
// free whatever any batch deleted (a kernel grace period, 6-15 ms here,
// bench/RESULTS.md) whenever such a deletion is pending.
func (t *Table) read() (*state, error) {
	conn, err := nftables.New(nftables.WithNetNSFd(t.ns.Fd()), nftables.AsLasting())
	if err != nil {
		return nil, err
	}
	s := &state{conn: conn}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	tb, err := conn.ListTableOfFamily(TableName, nftables.TableFamilyIPv4)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			ok = true
			return s, nil
		}
		return nil, fmt.Errorf("list table %s: %w", TableName, err)
	}
	s.exists = true
	// One dump of the family's chains tells which base chains the table
	// lacks (someone deleted them): a dump of a missing chain's rules is
	// just empty.
	have, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list chains of %s: %w", TableName, err)
	}
	for _, ch := range chains(tb) {
		if !slices.ContainsFunc(have, func(c *nftables.Chain) bool { return c.Table.Name == TableName && c.Name == ch.Name }) {
			if s.missing == nil {
				s.missing = map[string]bool{}
			}
			s.missing[ch.Name] = true
			continue // no rules to read
		}
		rs, err := conn.GetRules(tb, ch)
		if err != nil {
			return nil, fmt.Errorf("list chain %s: %w", ch.Name, err)
		}
		for _, r := range rs {
			r.Table, r.Chain = tb, ch
			c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			e, ok := parseComment(c)
			if !ok {
				continue // not ours: never touched
			}
			s.rules = append(s.rules, r)
			s.parsed = append(s.parsed, e)
		}
	}
	ok = true
	return s, nil
}

// close closes the state's netlink socket.
func (s *state) close() { _ = s.conn.CloseLasting() }

// deleteWhere queues the deletion of every rule whose entry matches and
// returns how many entries that was.
func (s *state) deleteWhere(match func(*Entry) bool) (int, error) {
	keys := map[string]bool{}
	var keep []*nftables.Rule
	var keepParsed []Entry
	for i, r := range s.rules {
		e := &s.parsed[i]
		if e.Kind != kindState && match(e) {
			if err := s.conn.DelRule(r); err != nil {
				return 0, err
			}
			keys[e.key] = true
			continue
		}
		keep = append(keep, r)
		keepParsed = append(keepParsed, *e)
	}
	s.rules, s.parsed = keep, keepParsed
	return len(keys), nil
}

// collectDead queues the deletion of the entries of owners that are gone.
func (s *state) collectDead() (int, error) {
	alive := map[string]bool{}
	return s.deleteWhere(func(e *Entry) bool {
		k := strconv.Itoa(e.owner.Pid) + "/" + strconv.FormatUint(e.owner.Start, 10)
		a, ok := alive[k]
		if !ok {
			a = e.owner.alive()
			alive[k] = a
		}
		return !a
	})
}

// finish deletes the table when no entry is left (restoring forwarding when
// the table had turned it on) and sends the batch.
func (t *Table) finish(s *state) error {
	if s.exists {
		left, wasOff := 0, false
		loopbackPublished := map[string]bool{}
		for i := range s.parsed {
			e := &s.parsed[i]
			switch {
			case e.Kind == kindState:
				wasOff = wasOff || e.localnet == ""
				continue
			case e.Kind == kindPublish && isLoopback(e.HostIP):
				loopbackPublished[e.Bridge] = true
			}
			left++
		}
		if s.adding {
			left++
		}
		if s.addingLocalnet != "" {
			loopbackPublished[s.addingLocalnet] = true
		}
		// route_localnet goes back off with the last loopback address
		// published on its bridge.
		var restore []string
		for i, e := range s.parsed {
			if e.Kind == kindState && e.localnet != "" && (left == 0 || !loopbackPublished[e.localnet]) {
				if left != 0 {
					if err := s.conn.DelRule(s.rules[i]); err != nil {
						return err
					}
				}
				restore = append(restore, e.localnet)
			}
		}
		restoreLocalnet := func() error {
			for _, br := range restore {
				if err := t.setLocalnet(br, false); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
			return nil
		}
		if left == 0 {
			s.conn.DelTable(table())
			if err := s.conn.Flush(); err != nil {
				return fmt.Errorf("delete table %s: %w", TableName, err)
			}
			if err := restoreLocalnet(); err != nil {
				return err
			}
			if wasOff {
				return t.setForwarding(false)
			}
			return nil
		}
		if err := s.conn.Flush(); err != nil {
			return err
		}
		return restoreLocalnet()
	}
	if err := s.conn.Flush(); err != nil {
		return err
	}
	return nil
}

// ensure queues the creation of the table and of its chains that are
// missing; when the table is new and forwarding off, it turns forwarding on
// and records that. An existing base chain is not added again: re-adding
// one is an update of its hook that costs the kernel a grace period
// (about 14 ms a batch here, see bench/RESULTS.md).
func (t *Table) ensure(s *state) error {
	tb := table()
	if s.exists {
		for _, ch := range chains(tb) {
			if s.missing[ch.Name] {
				s.conn.AddChain(ch)
			}
		}
		return nil
	}
	s.conn.AddTable(tb)
	for _, ch := range chains(tb) {
		s.conn.AddChain(ch)
	}
	on, err := t.forwarding()
	if err != nil {
		return err
	}
	if !on {
		if err := t.setForwarding(true); err != nil {
			return err
		}
		s.conn.AddRule(stateRule(tb))
	}
	return nil
}

const forwardingPath = "/proc/sys/net/ipv4/ip_forward"

// forwarding reads net.ipv4.ip_forward of the table's namespace (a thread
// inside it opens the file: /proc/sys/net follows the opener's namespace).
func (t *Table) forwarding() (bool, error) {
	var on bool
	err := netns.Do(t.ns, func() error {
		b, err := os.ReadFile(forwardingPath)
		on = strings.TrimSpace(string(b)) == "1"
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read %s: %w", forwardingPath, err)
	}
	return on, nil
}

// isLoopback reports whether a published host address is in 127.0.0.0/8.
func isLoopback(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.Is4() && a.IsLoopback()
}

func localnetPath(br string) string { return "/proc/sys/net/ipv4/conf/" + br + "/route_localnet" }

// localnet reads route_localnet of br in the table's namespace.
func (t *Table) localnet(br string) (bool, error) {
	var on bool
	err := netns.Do(t.ns, func() error {
		b, err := os.ReadFile(localnetPath(br))
		on = strings.TrimSpace(string(b)) == "1"
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read %s: %w", localnetPath(br), err)
	}
	return on, nil
}

func (t *Table) setLocalnet(br string, on bool) error {
	v := "0\n"
	if on {
		v = "1\n"
	}
	err := netns.Do(t.ns, func() error { return os.WriteFile(localnetPath(br), []byte(v), 0o644) })
	if err != nil {
		return fmt.Errorf("write %s: %w", localnetPath(br), err)
	}
	return nil
}

// ensureLocalnet turns route_localnet on for br, which a published
// loopback address needs (the kernel drops a packet with a 127/8 address
// routed out of any other interface than lo), and records that it did, so
// that finish turns it off again; a bridge that had it on is left alone.
func (t *Table) ensureLocalnet(s *state, br string) error {
	for _, e := range s.parsed {
		if e.Kind == kindState && e.localnet == br {
			return nil
		}
	}
	on, err := t.localnet(br)
	if err != nil || on {
		return err
	}
	if err := t.setLocalnet(br, true); err != nil {
		return err
	}
	tb := table()
	s.conn.AddRule(&nftables.Rule{Table: tb, Chain: chainNamed(tb, chainForward),
		Exprs: []expr.Any{&expr.Counter{}}, UserData: comment("nsbox state localnet=" + br)})
	return nil
}

func (t *Table) setForwarding(on bool) error {
	v := "0\n"
	if on {
		v = "1\n"
	}
	err := netns.Do(t.ns, func() error { return os.WriteFile(forwardingPath, []byte(v), 0o644) })
	if err != nil {
		return fmt.Errorf("write %s: %w", forwardingPath, err)
	}
	return nil
}

// bridgeSubnets returns the IPv4 subnets of br.
func (t *Table) bridgeSubnets(ctx context.Context, br string) ([]netip.Prefix, error) {
	c, err := rtnl.Dial(t.ns)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	l, err := c.LinkByName(ctx, br)
	if err != nil {
		return nil, err
	}
	if l.Kind != "bridge" {
		return nil, fmt.Errorf("%s is not a bridge", br)
	}
	as, err := c.Addrs(ctx, br)
	if err != nil {
		return nil, err
	}
	var nets []netip.Prefix
	for _, a := range as {
		if a.Prefix.Addr().Is4() && !slices.Contains(nets, a.Prefix.Masked()) {
			nets = append(nets, a.Prefix.Masked())
		}
	}
	if len(nets) == 0 {
		return nil, fmt.Errorf("bridge %s has no IPv4 address (add one with nsbox addr add CIDR dev %s)", br, br)
	}
	return nets, nil
}

// withLock runs fn on the table read under the lock, after removing the
// entries of dead owners, then sends the batch.
func (t *Table) withLock(ctx context.Context, fn func(s *state) error) (collected int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	unlock, err := t.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	s, err := t.read()
	if err != nil {
		return 0, err
	}
	defer s.close()
	if collected, err = s.collectDead(); err != nil {
		return 0, err
	}
	if err := fn(s); err != nil {
		return 0, err
	}
	return collected, t.finish(s)
}

// AddMasquerade masquerades the IPv4 subnets of m.Bridge leaving through
// m.Out (or any other interface) and accepts their forwarding. Adding an
// entry that exists (same bridge and owner) changes nothing. The bridge
// must have an IPv4 address.
func (t *Table) AddMasquerade(ctx context.Context, m Masquerade) error {
	wrap := func(err error) error { return &Error{Op: "masquerade", Object: m.Bridge, Err: err} }
	if err := rtnl.ValidateLinkName(m.Bridge); err != nil {
		return wrap(err)
	}
	if m.Out != "" {
		if err := rtnl.ValidateLinkName(m.Out); err != nil {
			return wrap(err)
		}
		if m.Out == m.Bridge {
			return wrap(errors.New("the outgoing interface is the bridge itself"))
		}
	}
	nets, err := t.bridgeSubnets(ctx, m.Bridge)
	if err != nil {
		return wrap(err)
	}
	c := masqComment(&m, nets)
	want, _ := parseComment(c)
	_, err = t.withLock(ctx, func(s *state) error {
		for i := range s.parsed {
			if s.parsed[i].key == want.key {
				return nil // idempotent
			}
		}
		if err := t.ensure(s); err != nil {
			return err
		}
		for _, r := range masqRules(table(), &m, nets, c) {
			s.conn.AddRule(r)
		}
		s.adding = true
		return nil
	})
	if err != nil {
		return wrap(err)
	}
	return nil
}

// RemoveMasquerade removes the masquerade entry of m.Bridge held by
// m.Owner (m.Out is ignored), and the table when it was the last entry.
func (t *Table) RemoveMasquerade(ctx context.Context, m Masquerade) error {
	want, _ := parseComment(masqComment(&m, nil))
	_, err := t.withLock(ctx, func(s *state) error {
		n, err := s.deleteWhere(func(e *Entry) bool { return e.key == want.key })
		if err == nil && n == 0 {
			err = fmt.Errorf("%w: no masquerade of %s held by %s", ErrNotFound, m.Bridge, m.Owner)
		}
		return err
	})
	if err != nil {
		return &Error{Op: "unmasquerade", Object: m.Bridge, Err: err}
	}
	return nil
}

// Publish sends connections to p's host address and port to the sandbox's
// address and port, from outside, from the namespace itself and from the
// other sandboxes of the bridge. A host port already published (by a
// living owner, on the same or any address) is an error naming its holder.
func (t *Table) Publish(ctx context.Context, p Publish) error {
	wrap := func(err error) error { return &Error{Op: "publish", Object: p.hostString(), Err: err} }
	if err := p.validate(); err != nil {
		return wrap(err)
	}
	c := publishComment(&p)
	_, err := t.withLock(ctx, func(s *state) error {
		for i := range s.parsed {
			e := &s.parsed[i]
			if e.Kind != kindPublish || e.Proto != p.proto() || e.HostPort != int(p.HostPort) {
				continue
			}
			if e.HostIP != "" && p.HostIP.IsValid() && e.HostIP != p.HostIP.String() {
				continue
			}
			return fmt.Errorf("%w by %s (to %s:%d)", ErrPortTaken, e.owner, e.Addr, e.Port)
		}
		if err := t.ensure(s); err != nil {
			return err
		}
		if p.HostIP.IsLoopback() {
			if err := t.ensureLocalnet(s, p.Bridge); err != nil {
				return err
			}
		}
		for _, r := range publishRules(table(), &p, c) {
			s.conn.AddRule(r)
		}
		s.adding = true
		if p.HostIP.IsLoopback() {
			s.addingLocalnet = p.Bridge
		}
		return nil
	})
	if err != nil {
		return wrap(err)
	}
	return nil
}

// Unpublish removes the published port of p (protocol, host address and
// port, owner), and the table when it was the last entry.
func (t *Table) Unpublish(ctx context.Context, p Publish) error {
	want, _ := parseComment(publishComment(&p))
	_, err := t.withLock(ctx, func(s *state) error {
		n, err := s.deleteWhere(func(e *Entry) bool { return e.key == want.key })
		if err == nil && n == 0 {
			err = fmt.Errorf("%w: not published by %s", ErrNotFound, p.Owner)
		}
		return err
	})
	if err != nil {
		return &Error{Op: "unpublish", Object: p.hostString(), Err: err}
	}
	return nil
}

// List returns the entries in the table, after removing those of dead
// owners.
func (t *Table) List(ctx context.Context) ([]Entry, error) {
	var out []Entry
	_, err := t.withLock(ctx, func(s *state) error {
		idx := map[string]int{}
		for i := range s.parsed {
			e := s.parsed[i]
			if e.Kind == kindState {
				continue
			}
			if j, ok := idx[e.key]; ok {
				out[j].Rules++
				continue
			}
			e.Rules = 1
			idx[e.key] = len(out)
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, &Error{Op: "list", Err: err}
	}
	return out, nil
}

// Collect removes the entries whose owner is gone (and the table when none
// is left) and returns how many it removed.
func (t *Table) Collect(ctx context.Context) (int, error) {
	n, err := t.withLock(ctx, func(*state) error { return nil })
	if err != nil {
		return 0, &Error{Op: "collect", Err: err}
	}
	return n, nil
}
