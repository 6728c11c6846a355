package main

import "context"

// bridgeCommand is a placeholder until the bridge command lands.
func bridgeCommand() *command {
	return &command{name: "bridge", usage: "bridge ...", run: func(ctx context.Context, e *env, args []string) error {
		return usagef("bridge: not implemented yet")
	}}
}
