package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"
)

// The keeper's files in its socket folder.
const (
	keeperSock = "keeper.sock"
	keeperLock = "keeper.lock"
	keeperPid  = "keeper.pid"
	// keeperEnv starts the nsbox binary as the keeper of the folder it
	// names; keeperDataEnv and keeperLogEnv say where its leases and log go.
	keeperEnv     = "NSBOX_CNI_KEEPER"
	keeperDataEnv = "NSBOX_CNI_KEEPER_DATA"
	keeperLogEnv  = "NSBOX_CNI_KEEPER_LOG"
)

// keeperRequest is one call to the keeper (one JSON object per connection).
type keeperRequest struct {
	Op          string         `json:"op"` // add, del, check, gc, status
	Network     string         `json:"network,omitempty"`
	ContainerID string         `json:"containerID,omitempty"`
	IfName      string         `json:"ifname,omitempty"`
	Netns       string         `json:"netns,omitempty"`
	Hostname    string         `json:"hostname,omitempty"`
	Timeout     time.Duration  `json:"timeout,omitempty"`
	Valid       []attachmentID `json:"valid,omitempty"`
}

// attachmentID names an attachment in requests.
type attachmentID struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

// keeperReply is the keeper's answer.
type keeperReply struct {
	Code    uint       `json:"code,omitempty"` // a CNI error code; 0 is success
	Error   string     `json:"error,omitempty"`
	Lease   *leaseView `json:"lease,omitempty"`
	Removed int        `json:"removed,omitempty"`
}

// leaseView is what the plugin needs of a lease to build its result.
type leaseView struct {
	Addr   netip.Prefix `json:"addr"`
	Router netip.Addr   `json:"router,omitzero"`
	Routes []leaseRoute `json:"routes,omitempty"`
	DNS    []netip.Addr `json:"dns,omitempty"`
	Domain string       `json:"domain,omitempty"`
	Server netip.Addr   `json:"server"`
	Expiry time.Time    `json:"expiry,omitzero"`
	State  string       `json:"state"`
}

type leaseRoute struct {
	Dst     netip.Prefix `json:"dst"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
}

// callKeeper sends req to the keeper of the config's socket folder,
// starting the keeper first when none answers.
func callKeeper(ctx context.Context, o *op, req keeperRequest) (*keeperReply, error) {
	dir := o.conf.IPAMConf.socketDir()
	sock := filepath.Join(dir, keeperSock)
	c, err := dialKeeper(ctx, sock)
	if err != nil {
		o.log.printf("no keeper at %s (%v): starting one", sock, err)
		if err := startKeeper(o.conf, dir); err != nil {
			return nil, types.NewError(types.ErrPluginNotAvailable, "start the lease keeper: "+err.Error(), "")
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err = dialKeeper(ctx, sock)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("lease keeper at %s: %v", sock, err), "")
		}
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, fmt.Errorf("lease keeper: send: %w", err)
	}
	var rep keeperReply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("lease keeper: no answer: %v", err), "")
	}
	if rep.Code != 0 {
		return &rep, types.NewError(rep.Code, rep.Error, "lease keeper "+sock)
	}
	return &rep, nil
}

func dialKeeper(ctx context.Context, sock string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

// startKeeper runs this binary as the keeper of dir, detached: a new
// session, stdio on /dev/null (a plugin's stdout must reach EOF when the
// plugin exits). Of several keepers started at once, the lock lets one live.
func startKeeper(n *NetConf, dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), keeperEnv+"="+dir, keeperDataEnv+"="+n.IPAMConf.dataDir(), keeperLogEnv+"="+n.Log)
	cmd.Env = withoutCNI(cmd.Env)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.Dir = "/"
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	// Reap it if it exits at once (lost the lock race); else let it go.
	go func() { _ = cmd.Wait() }()
	return nil
}

// withoutCNI drops the CNI_* variables, so the keeper is not a plugin.
func withoutCNI(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if len(e) > 4 && e[:4] == "CNI_" {
			continue
		}
		out = append(out, e)
	}
	return out
}

func dhcpAdd(ctx context.Context, o *op) (*current.Result, error) {
	timeout, _ := o.conf.IPAMConf.timeout()
	rep, err := callKeeper(ctx, o, keeperRequest{
		Op: "add", Network: o.conf.Name, ContainerID: o.args.ContainerID, IfName: o.args.IfName,
		Netns: o.args.Netns, Hostname: o.conf.IPAMConf.Hostname, Timeout: timeout,
	})
	if err != nil {
		return nil, err
	}
	if rep.Lease == nil {
		return nil, errors.New("lease keeper: add: no lease in the answer")
	}
	return leaseResult(rep.Lease), nil
}

// leaseResult turns a lease into the IPAM part of a result.
func leaseResult(l *leaseView) *current.Result {
	ip := &current.IPConfig{Address: net.IPNet{IP: l.Addr.Addr().AsSlice(), Mask: net.CIDRMask(l.Addr.Bits(), l.Addr.Addr().BitLen())}}
	if l.Router.IsValid() {
		ip.Gateway = l.Router.AsSlice()
	}
	r := &current.Result{CNIVersion: current.ImplementedSpecVersion, IPs: []*current.IPConfig{ip}}
	if len(l.Routes) > 0 {
		for _, rt := range l.Routes {
			x := &types.Route{Dst: net.IPNet{IP: rt.Dst.Addr().AsSlice(), Mask: net.CIDRMask(rt.Dst.Bits(), rt.Dst.Addr().BitLen())}}
			if rt.Gateway.IsValid() {
				x.GW = rt.Gateway.AsSlice()
			}
			r.Routes = append(r.Routes, x)
		}
	} else if l.Router.IsValid() {
		r.Routes = append(r.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: l.Router.AsSlice()})
	}
	for _, d := range l.DNS {
		r.DNS.Nameservers = append(r.DNS.Nameservers, d.String())
	}
	r.DNS.Domain = l.Domain
	return r
}

func dhcpDel(ctx context.Context, o *op) error {
	_, err := callKeeper(ctx, o, keeperRequest{Op: "del", Network: o.conf.Name, ContainerID: o.args.ContainerID, IfName: o.args.IfName})
	return err
}

func dhcpCheck(ctx context.Context, o *op) error {
	_, err := callKeeper(ctx, o, keeperRequest{Op: "check", Network: o.conf.Name, ContainerID: o.args.ContainerID, IfName: o.args.IfName})
	return err
}

func dhcpGC(ctx context.Context, o *op, valid []types.GCAttachment) error {
	req := keeperRequest{Op: "gc", Network: o.conf.Name, Valid: []attachmentID{}}
	for _, v := range valid {
		req.Valid = append(req.Valid, attachmentID{v.ContainerID, v.IfName})
	}
	rep, err := callKeeper(ctx, o, req)
	if err == nil {
		o.log.printf("gc: %d leases released", rep.Removed)
	}
	return err
}

func dhcpStatus(ctx context.Context, o *op) error {
	_, err := callKeeper(ctx, o, keeperRequest{Op: "status"})
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "lease keeper: "+asCNIError(err).Msg, "")
	}
	return nil
}
