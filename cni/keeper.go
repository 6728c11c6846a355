package cni

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/dhcpclient"
	"github.com/nsbox/nsbox/internal/atomicfile"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/rtnl"
)

// The lease keeper holds the DHCP leases of nsbox-dhcp attachments: it
// acquires each lease inside the container's namespace with nsbox's own
// client, configures it there (the address's lifetime is the lease's),
// renews it, and releases it on DEL. One keeper serves a socket folder
// (DefaultSocketDir on a host); the plugin starts it on first use and a
// lock keeps it single. Each attachment is persisted as a record (who, which
// namespace, which client id) and a dhcpclient lease file, so a keeper that
// restarts, even after SIGKILL, resumes every lease with INIT-REBOOT (a
// REQUEST for the same address with the same client id, no DISCOVER).

// keeperIdle is how long a keeper that holds nothing waits before it exits.
const keeperIdle = 5 * time.Minute

// record is the persisted identity of one attachment.
type record struct {
	Network     string `json:"network"`
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
	Netns       string `json:"netns"`
	ClientID    string `json:"clientID"` // hex of option 61
	Hostname    string `json:"hostname,omitempty"`
}

func (r *record) key() string {
	h := sha256.Sum256([]byte(r.Network + "\x00" + r.ContainerID + "\x00" + r.IfName))
	return hex.EncodeToString(h[:12])
}

// held is a lease the keeper keeps.
type held struct {
	mu     sync.Mutex // one operation at a time
	rec    record
	ns     *netns.Handle
	conn   *rtnl.Conn
	client *dhcpclient.Client
	cancel context.CancelFunc
	done   chan struct{}
	ready  chan struct{} // closed once restored (or failed to)
	// releasing is set while a DHCPRELEASE goes out (see releaseApplier).
	releasing atomic.Bool
	logf      func(string, ...any)
	err       error // why the restore failed
}

// keeper is the daemon's state.
type keeper struct {
	dir, dataDir string
	logf         func(format string, args ...any)
	mu           sync.Mutex
	leases       map[string]*held
	lastBusy     time.Time
}

// keeperMain runs the keeper of socket folder dir until SIGTERM, SIGINT or
// an idle period with nothing held. It exits 0 when another keeper holds the
// lock.
func keeperMain(dir string) int {
	dataDir := os.Getenv(keeperDataEnv)
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	logf := func(string, ...any) {}
	if p := os.Getenv(keeperLogEnv); p != "" {
		if f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			defer f.Close()
			var mu sync.Mutex
			logf = func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintf(f, "%s keeper pid %d: %s\n", time.Now().UTC().Format(time.RFC3339Nano), os.Getpid(), fmt.Sprintf(format, args...))
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	if err := runKeeper(ctx, dir, dataDir, logf); err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}

// runKeeper serves dir's socket until ctx ends.
func runKeeper(ctx context.Context, dir, dataDir string, logf func(string, ...any)) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("keeper: %w", err)
	}
	lk, err := os.OpenFile(filepath.Join(dir, keeperLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("keeper: lock: %w", err)
	}
	defer lk.Close()
	if err := unix.Flock(int(lk.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil // another keeper serves dir
	}
	sock := filepath.Join(dir, keeperSock)
	_ = os.Remove(sock) // a dead keeper's socket
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("keeper: listen %s: %w", sock, err)
	}
	defer ln.Close()
	pidFile := filepath.Join(dir, keeperPid)
	if err := atomicfile.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("keeper: %w", err)
	}
	defer os.Remove(pidFile)
	k := &keeper{dir: dir, dataDir: filepath.Join(dataDir, "dhcp"), logf: logf, leases: map[string]*held{}, lastBusy: time.Now()}
	logf("serving %s, leases in %s", sock, k.dataDir)
	k.restore(ctx)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go k.idleWatch(ctx, ln)
	var wg sync.WaitGroup
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.serve(ctx, c)
		}()
	}
	wg.Wait()
	// Stop renewing but keep the leases: a new keeper resumes them.
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, h := range k.leases {
		h.stop(false)
	}
	logf("stopped")
	return nil
}

// idleWatch closes ln once nothing has been held for keeperIdle.
func (k *keeper) idleWatch(ctx context.Context, ln net.Listener) {
	t := time.NewTicker(keeperIdle / 10)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k.mu.Lock()
		idle := len(k.leases) == 0 && time.Since(k.lastBusy) > keeperIdle
		k.mu.Unlock()
		if idle {
			k.logf("idle for %s with no lease: exiting", keeperIdle)
			ln.Close()
			return
		}
	}
}

// restore resumes every persisted attachment in the background.
func (k *keeper) restore(ctx context.Context) {
	ents, err := os.ReadDir(k.dataDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(k.dataDir, name))
		if err != nil {
			continue
		}
		var rec record
		if json.Unmarshal(b, &rec) != nil || rec.key()+".json" != name {
			k.logf("ignoring %s: not a lease record", name)
			continue
		}
		h := &held{rec: rec, ready: make(chan struct{}), logf: k.logf}
		k.leases[rec.key()] = h
		go func() {
			defer close(h.ready)
			h.mu.Lock()
			defer h.mu.Unlock()
			if err := k.start(ctx, h, 0); err != nil {
				h.err = err
				k.logf("resume %s/%s in %s: %v", rec.ContainerID, rec.IfName, rec.Netns, err)
				if _, serr := os.Stat(rec.Netns); errors.Is(serr, os.ErrNotExist) {
					// The container is gone (its DEL came while no keeper
					// ran, or never): nothing to renew or release.
					k.forget(rec.key(), h)
				}
			} else {
				k.logf("resumed %s/%s: %s", rec.ContainerID, rec.IfName, h.client.Lease().Addr)
			}
		}()
	}
}

func (k *keeper) recordPath(r *record) string { return filepath.Join(k.dataDir, r.key()+".json") }
func (k *keeper) leasePath(r *record) string  { return filepath.Join(k.dataDir, r.key()+".lease") }

// start opens the namespace of h, acquires the lease (INIT-REBOOT when the
// lease file holds one) and keeps it renewed. timeout 0 means 30 s. On
// failure h holds nothing.
func (k *keeper) start(ctx context.Context, h *held, timeout time.Duration) (err error) {
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	rec := &h.rec
	id, err := hex.DecodeString(rec.ClientID)
	if err != nil || len(id) < 2 {
		return fmt.Errorf("client id %q: bad record", rec.ClientID)
	}
	ns, err := netns.Open(rec.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_NETNS %q: %v", rec.Netns, err), "")
	}
	defer func() {
		if err != nil {
			h.stop(false)
			ns.Close()
		}
	}()
	h.ns = ns
	conn, err := rtnl.Dial(ns)
	if err != nil {
		return fmt.Errorf("dial %s: %w", rec.Netns, err)
	}
	h.conn = conn
	link, err := conn.LinkByName(ctx, rec.IfName)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", rec.IfName, rec.Netns, err)
	}
	pc, err := dhcpclient.Listen(ns, rec.IfName)
	if err != nil {
		return err
	}
	opts := []dhcpclient.Option{
		dhcpclient.WithApplier(&releaseApplier{RtnlApplier: dhcpclient.RtnlApplier{Conn: conn, Dev: rec.IfName}, ns: ns, releasing: &h.releasing, logf: k.logf}),
		dhcpclient.WithLeaseFile(k.leasePath(rec)),
		dhcpclient.WithClientID(id),
		dhcpclient.WithLogf(func(f string, a ...any) {
			k.logf("%s/%s: %s", short(rec.ContainerID), rec.IfName, fmt.Sprintf(f, a...))
		}),
		// The server is on the bridge next to the container: retry after
		// 1 s, not RFC 2131's 4 s (the reference dhcp plugin's wait).
		dhcpclient.WithFirstRetry(time.Second),
		dhcpclient.WithMaxRetry(4 * time.Second),
	}
	if rec.Hostname != "" {
		opts = append(opts, dhcpclient.WithHostname(rec.Hostname))
	}
	cl, err := dhcpclient.New(rec.IfName, link.HardwareAddr, pc, opts...)
	if err != nil {
		pc.Close()
		return err
	}
	h.client = cl
	actx, cancel := context.WithTimeout(ctx, timeout)
	_, err = cl.Acquire(actx)
	cancel()
	if err != nil {
		if errors.Is(err, dhcpclient.ErrNoOffer) || errors.Is(err, dhcpclient.ErrNoLease) || errors.Is(err, context.DeadlineExceeded) {
			return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("dhcp on %s: no lease within %s", rec.IfName, timeout), err.Error())
		}
		return fmt.Errorf("dhcp on %s: %w", rec.IfName, err)
	}
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	h.cancel, h.done = rcancel, make(chan struct{})
	go func() {
		defer close(h.done)
		if err := cl.Run(rctx); err != nil {
			k.logf("%s/%s: renewals stopped: %v", short(rec.ContainerID), rec.IfName, err)
		}
	}()
	return nil
}

// stop ends renewals; with release it gives the lease back (DHCPRELEASE,
// address removed, lease file deleted). It closes everything h holds.
func (h *held) stop(release bool) {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
	if h.client != nil {
		if release && h.client.Lease() != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			h.releasing.Store(true)
			if err := h.client.Release(ctx); err != nil && h.logf != nil {
				h.logf("release: %v", err)
			}
			h.releasing.Store(false)
			cancel()
		}
		h.client.Close()
		h.client = nil
	}
	if h.conn != nil {
		h.conn.Close()
		h.conn = nil
	}
	if h.ns != nil {
		h.ns.Close()
		h.ns = nil
	}
}

// releaseApplier is the RtnlApplier of a keeper's lease, with one change:
// when the address is removed right after a DHCPRELEASE was sent, it first
// waits (at most 500 ms) until the container has resolved the server's MAC.
// The RELEASE is unicast: until ARP answers, the kernel holds it in the
// neighbour queue, and removing the address at once drops it, so the server
// would keep the lease until it expires.
type releaseApplier struct {
	dhcpclient.RtnlApplier
	ns        *netns.Handle
	releasing *atomic.Bool
	logf      func(string, ...any)
}

// Remove waits for the server's ARP entry during a release, then removes.
func (a *releaseApplier) Remove(ctx context.Context, l *dhcpclient.Lease) error {
	if a.releasing.Load() && l.Server.IsValid() {
		deadline := time.Now().Add(500 * time.Millisecond)
		n := 0
		for time.Now().Before(deadline) && !arpResolved(a.ns, l.Server.String()) {
			time.Sleep(2 * time.Millisecond)
			n++
		}
		if a.logf != nil {
			a.logf("release: waited %d polls for ARP of %s", n, l.Server)
		}
	}
	return a.RtnlApplier.Remove(ctx, l)
}

// arpResolved reads the ARP table of ns (/proc/thread-self/net/arp from a
// thread inside it) and reports whether ip has a complete entry.
func arpResolved(ns *netns.Handle, ip string) bool {
	ok := false
	_ = netns.Do(ns, func() error {
		b, err := os.ReadFile("/proc/thread-self/net/arp")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			// IP address, HW type, Flags (0x2: complete), HW address, ...
			if len(f) >= 4 && f[0] == ip && f[2] != "0x0" {
				ok = true
			}
		}
		return nil
	})
	return ok
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// serve answers one connection.
func (k *keeper) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var req keeperRequest
	if err := json.NewDecoder(c).Decode(&req); err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	k.mu.Lock()
	k.lastBusy = time.Now()
	k.mu.Unlock()
	rep := k.handle(ctx, &req)
	_ = json.NewEncoder(c).Encode(rep)
}

func fail(err error) *keeperReply {
	var ce *types.Error
	if errors.As(err, &ce) {
		return &keeperReply{Code: ce.Code, Error: ce.Msg}
	}
	return &keeperReply{Code: types.ErrInternal, Error: err.Error()}
}

func (k *keeper) handle(ctx context.Context, req *keeperRequest) *keeperReply {
	switch req.Op {
	case "status":
		return &keeperReply{}
	case "gc":
		return k.gc(req)
	case "add", "del", "check":
	default:
		return &keeperReply{Code: types.ErrInvalidNetworkConfig, Error: fmt.Sprintf("keeper: unknown op %q", req.Op)}
	}
	rec := record{Network: req.Network, ContainerID: req.ContainerID, IfName: req.IfName, Netns: req.Netns, Hostname: req.Hostname}
	key := rec.key()
	k.mu.Lock()
	h := k.leases[key]
	if h == nil && req.Op == "add" {
		cid := sha256.Sum256([]byte("nsbox-cni\x00" + key))
		rec.ClientID = "00" + hex.EncodeToString(cid[:15]) // type 0: not a hardware address
		h = &held{rec: rec, ready: make(chan struct{}), logf: k.logf}
		close(h.ready)
		k.leases[key] = h
	}
	k.mu.Unlock()
	if h == nil {
		if req.Op == "check" {
			return &keeperReply{Code: types.ErrUnknownContainer, Error: fmt.Sprintf("keeper: no lease for %s/%s", req.ContainerID, req.IfName)}
		}
		return &keeperReply{} // DEL of nothing
	}
	<-h.ready
	h.mu.Lock()
	defer h.mu.Unlock()
	switch req.Op {
	case "add":
		if h.client != nil && h.client.Lease() != nil {
			return &keeperReply{Lease: view(h.client)}
		}
		if err := atomicfile.WriteFile(k.recordPath(&h.rec), mustJSON(&h.rec), 0o644); err != nil {
			k.forget(key, h)
			return fail(err)
		}
		if err := k.start(ctx, h, req.Timeout); err != nil {
			k.forget(key, h)
			return fail(err)
		}
		k.logf("add %s/%s: %s", short(rec.ContainerID), rec.IfName, h.client.Lease().Addr)
		return &keeperReply{Lease: view(h.client)}
	case "del":
		k.release(key, h)
		return &keeperReply{}
	default: // check
		if h.client == nil || h.client.Lease() == nil {
			msg := fmt.Sprintf("keeper: %s/%s holds no lease", req.ContainerID, req.IfName)
			if h.err != nil {
				msg += ": " + h.err.Error()
			}
			return &keeperReply{Code: types.ErrUnknownContainer, Error: msg}
		}
		return &keeperReply{Lease: view(h.client)}
	}
}

// release gives back h's lease and forgets it (h.mu held).
func (k *keeper) release(key string, h *held) {
	addr := ""
	if h.client != nil && h.client.Lease() != nil {
		addr = h.client.Lease().Addr.String()
	}
	h.stop(true)
	k.forget(key, h)
	k.logf("del %s/%s: released %s", short(h.rec.ContainerID), h.rec.IfName, addr)
}

// forget removes h from the map and its files from the disk.
func (k *keeper) forget(key string, h *held) {
	h.stop(false)
	os.Remove(k.recordPath(&h.rec))
	os.Remove(k.leasePath(&h.rec))
	k.mu.Lock()
	if k.leases[key] == h {
		delete(k.leases, key)
	}
	k.lastBusy = time.Now()
	k.mu.Unlock()
}

// gc releases the network's leases that are not in req.Valid.
func (k *keeper) gc(req *keeperRequest) *keeperReply {
	valid := map[attachmentID]bool{}
	for _, v := range req.Valid {
		valid[v] = true
	}
	k.mu.Lock()
	var stale []*held
	var keys []string
	for key, h := range k.leases {
		if h.rec.Network == req.Network && !valid[attachmentID{h.rec.ContainerID, h.rec.IfName}] {
			stale = append(stale, h)
			keys = append(keys, key)
		}
	}
	k.mu.Unlock()
	for i, h := range stale {
		<-h.ready
		h.mu.Lock()
		k.release(keys[i], h)
		h.mu.Unlock()
	}
	return &keeperReply{Removed: len(stale)}
}

func view(cl *dhcpclient.Client) *leaseView {
	l := cl.Lease()
	v := &leaseView{Addr: l.Addr, Router: l.Router, DNS: l.DNS, Domain: l.Domain, Server: l.Server, Expiry: l.Expiry(), State: cl.State().String()}
	for _, r := range l.Routes {
		v.Routes = append(v.Routes, leaseRoute{Dst: r.Dst, Gateway: r.Gateway})
	}
	return v
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // records are plain strings
	}
	return append(b, '\n')
}
