package main

import "context"

// routeCommand is a placeholder until the route command lands.
func routeCommand() *command {
	return &command{name: "route", usage: "route ...", run: func(ctx context.Context, e *env, args []string) error {
		return usagef("route: not implemented yet")
	}}
}
