package main

import "context"

// dhcpdCommand is a placeholder until the dhcpd command lands.
func dhcpdCommand() *command {
	return &command{name: "dhcpd", usage: "dhcpd ...", run: func(ctx context.Context, e *env, args []string) error {
		return usagef("dhcpd: not implemented yet")
	}}
}
