package main

import "context"

// dhcpCommand is a placeholder until the dhcp command lands.
func dhcpCommand() *command {
	return &command{name: "dhcp", usage: "dhcp ...", run: func(ctx context.Context, e *env, args []string) error {
		return usagef("dhcp: not implemented yet")
	}}
}
