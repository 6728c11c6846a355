package main

import "context"

// addrCommand is a placeholder until the addr command lands.
func addrCommand() *command {
	return &command{name: "addr", usage: "addr ...", run: func(ctx context.Context, e *env, args []string) error {
		return usagef("addr: not implemented yet")
	}}
}
