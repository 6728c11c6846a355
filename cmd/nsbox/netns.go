package main

import "context"

// netnsCommand is a placeholder until the netns command lands.
func netnsCommand() *command {
	return &command{name: "netns", usage: "netns ...", run: func(ctx context.Context, e *env, args []string) error {
		return usagef("netns: not implemented yet")
	}}
}
