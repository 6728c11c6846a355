package main

import "context"

// runCommand is a placeholder until the run command lands.
func runCommand() *command {
	return &command{name: "run", usage: "run ...", run: func(ctx context.Context, e *env, args []string) error {
		return usagef("run: not implemented yet")
	}}
}
