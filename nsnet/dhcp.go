package nsnet

import (
	"context"
	"errors"

	"github.com/nsbox/nsbox/netns"
)

// leaseDHCP obtains a lease inside child for a.ifName and keeps renewing it
// until Close. (Filled in once dhcpclient lands.)
func (a *Attachment) leaseDHCP(ctx context.Context, c *Config, child *netns.Handle) error {
	return errors.New("nsnet: dhcp: not implemented yet")
}
