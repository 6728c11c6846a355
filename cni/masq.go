package cni

import (
	"context"
	"errors"
	"fmt"

	"github.com/nsbox/nsbox/nat"
)

// ipMasq goes through the nat package: its entry masquerades the bridge's
// IPv4 subnets (so ipMasq puts the gateway on the bridge) in nsbox's one
// nftables table, "ip nsbox", of the runtime's namespace. The entry's owner
// names the network and holds no process, so it stays until the network's
// last attachment goes (DEL or GC), and `nsbox nat list` shows it.

func masqEntry(n *NetConf) nat.Masquerade {
	return nat.Masquerade{Bridge: n.Bridge, Owner: nat.Owner{Name: "cni network " + n.Name}}
}

// addMasq adds the network's masquerade; an existing one is kept.
func addMasq(ctx context.Context, n *NetConf) error {
	t, err := nat.Open(nil)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := t.AddMasquerade(ctx, masqEntry(n)); err != nil {
		return fmt.Errorf("ipMasq: %w", err)
	}
	return nil
}

// delMasq removes the network's masquerade; none is fine.
func delMasq(ctx context.Context, n *NetConf) error {
	t, err := nat.Open(nil)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := t.RemoveMasquerade(ctx, masqEntry(n)); err != nil && !errors.Is(err, nat.ErrNotFound) {
		return fmt.Errorf("ipMasq: %w", err)
	}
	return nil
}
