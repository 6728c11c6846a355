package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nsbox/nsbox/dhcpclient"
	"github.com/nsbox/nsbox/netns"
)

// nsboxMark starts every file nsbox writes under /etc/netns/NAME/ (the
// lease's resolv.conf); netns del removes only files that start with it.
const nsboxMark = "# written by nsbox"

// netnsDel is `netns del NAME`: as ip netns del, plus what nsbox keeps for
// the namespace. Processes still running in it are named in a warning (the
// namespace lives on until they end); then the name is removed, the files
// nsbox wrote under /etc/netns/NAME/ (and the folder when nothing else is
// in it), and the DHCP lease files of namespaces that no longer exist.
func netnsDel(ctx context.Context, e *env, name string) error {
	if pids, err := netns.Pids(name); err == nil && len(pids) > 0 {
		s := make([]string, len(pids))
		for i, p := range pids {
			s[i] = strconv.Itoa(p)
		}
		fmt.Fprintf(e.stderr, "nsbox: warning: netns del %s: processes still run in it (pid %s); the namespace lives until they end (stop them with: kill %s)\n",
			name, strings.Join(s, ","), strings.Join(s, " "))
	}
	if err := netns.Delete(ctx, name); err != nil {
		return err
	}
	removeNsboxEtc(name)
	pruneLeaseFiles()
	return nil
}

// removeNsboxEtc removes the files of /etc/netns/NAME that nsbox wrote, and
// the folder once empty; anything else stays.
func removeNsboxEtc(name string) {
	dir := filepath.Join(netns.EtcDir, name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range ents {
		p := filepath.Join(dir, ent.Name())
		if ent.Type().IsRegular() && writtenByNsbox(p) {
			_ = os.Remove(p)
		}
	}
	_ = os.Remove(dir) // only succeeds when empty
}

func writtenByNsbox(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	return (err == nil || line != "") && strings.HasPrefix(line, nsboxMark)
}

// pruneLeaseFiles removes the client lease files (dhcpclient.DefaultLeaseDir)
// and server lease files (dhcpdLeaseDir) that belong to named namespaces
// that no longer exist. A client file names its namespace inside; a server
// file only in its name, netns-NAME-DEV.leases, so one that could belong to
// any living namespace (names may hold '-', as devices may) is kept, and
// so are those of namespaces given by path (netns-_proc_...).
func pruneLeaseFiles() {
	names, err := netns.List()
	if err != nil {
		return
	}
	ents, _ := os.ReadDir(dhcpclient.DefaultLeaseDir)
	for _, ent := range ents {
		n := ent.Name()
		if !strings.HasPrefix(n, "netns-") || !strings.HasSuffix(n, ".lease") {
			continue
		}
		p := filepath.Join(dhcpclient.DefaultLeaseDir, n)
		l, err := dhcpclient.LoadLease(p)
		if err != nil || l == nil || l.Netns == "" || strings.Contains(l.Netns, "/") {
			continue
		}
		if !slices.Contains(names, l.Netns) {
			_ = os.Remove(p)
		}
	}
	ents, _ = os.ReadDir(dhcpdLeaseDir)
	for _, ent := range ents {
		n := ent.Name()
		if !strings.HasPrefix(n, "netns-") || strings.HasPrefix(n, "netns-_") || !strings.HasSuffix(n, ".leases") {
			continue
		}
		if !slices.ContainsFunc(names, func(ns string) bool { return strings.HasPrefix(n, "netns-"+ns+"-") }) {
			p := filepath.Join(dhcpdLeaseDir, n)
			_ = os.Remove(p)
			_ = os.Remove(p + ".lock")
		}
	}
}
