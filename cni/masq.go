package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Masquerade lives in the runtime's namespace, in nsbox's one nftables
// table ("nsbox", family ip, shared with the nat package), in a chain of
// its own so that neither removes the other's rules. Each rule carries
// "nsbox-cni NETWORK SUBNET" as its user data, which is how DEL and GC find
// exactly the rules they added.
const (
	masqTable = "nsbox"
	masqChain = "cni-postrouting"
)

// masqTag is the user data of the rule of network's subnet.
func masqTag(network string, subnet netip.Prefix) string {
	return "nsbox-cni " + network + " " + subnet.String()
}

// lockMasq serialises changes of the table between plugin runs.
func lockMasq(dataDir string) (*os.File, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("masquerade: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dataDir, "masq.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("masquerade: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("masquerade: lock: %w", err)
	}
	return f, nil
}

func masqObjects() (*nftables.Table, *nftables.Chain) {
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: masqTable}
	c := &nftables.Chain{
		Name: masqChain, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	}
	return t, c
}

// masqRules returns the rules of the chain (none when it does not exist).
func masqRules(c *nftables.Conn) ([]*nftables.Rule, error) {
	t, ch := masqObjects()
	rules, err := c.GetRules(t, ch)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || strings.Contains(err.Error(), "no such file") {
			return nil, nil
		}
		return nil, err
	}
	return rules, nil
}

// addMasq adds, unless present, the rule that masquerades IPv4 traffic from
// subnet to anywhere outside it. IPv6 subnets are not masqueraded.
func addMasq(dataDir, network string, subnet netip.Prefix) error {
	if !subnet.Addr().Is4() {
		return nil
	}
	lk, err := lockMasq(dataDir)
	if err != nil {
		return err
	}
	defer lk.Close()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("masquerade %s: %w", subnet, err)
	}
	rules, err := masqRules(c)
	if err != nil {
		return fmt.Errorf("masquerade %s: list rules: %w", subnet, err)
	}
	tag := masqTag(network, subnet)
	for _, r := range rules {
		if string(r.UserData) == tag {
			return nil
		}
	}
	t, ch := masqObjects()
	c.AddTable(t)
	c.AddChain(ch)
	net := subnet.Masked().Addr().AsSlice()
	mask := netipMask(subnet)
	c.AddRule(&nftables.Rule{
		Table: t, Chain: ch, UserData: []byte(tag),
		Exprs: []expr.Any{
			// ip saddr & mask == net
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net},
			// ip daddr & mask != net
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: net},
			&expr.Masq{},
		},
	})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("masquerade %s: %w", subnet, err)
	}
	return nil
}

func netipMask(p netip.Prefix) []byte {
	m := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// delMasq removes the rules of network (every subnet), then the chain if
// it is empty, then the table if nothing else lives in it.
func delMasq(dataDir, network string) error {
	lk, err := lockMasq(dataDir)
	if err != nil {
		return err
	}
	defer lk.Close()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("masquerade: %w", err)
	}
	rules, err := masqRules(c)
	if err != nil {
		return fmt.Errorf("masquerade: list rules: %w", err)
	}
	if rules == nil {
		return nil
	}
	prefix := "nsbox-cni " + network + " "
	left := 0
	for _, r := range rules {
		if strings.HasPrefix(string(r.UserData), prefix) {
			if err := c.DelRule(r); err != nil {
				return fmt.Errorf("masquerade: delete rule: %w", err)
			}
			continue
		}
		left++
	}
	t, ch := masqObjects()
	if left == 0 {
		c.DelChain(ch)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("masquerade: %w", err)
	}
	if left == 0 {
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
		if err != nil {
			return fmt.Errorf("masquerade: list chains: %w", err)
		}
		for _, x := range chains {
			if x.Table.Name == masqTable {
				return nil // the nat package's chains live on
			}
		}
		c.DelTable(t)
		if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("masquerade: delete table: %w", err)
		}
	}
	return nil
}
