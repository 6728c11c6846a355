package main

import "context"

// linkCommand is a placeholder until the link command lands.
func linkCommand() *command {
	return &command{name: "link", usage: "link ...", run: func(ctx context.Context, e *env, args []string) error {
		return usagef("link: not implemented yet")
	}}
}
