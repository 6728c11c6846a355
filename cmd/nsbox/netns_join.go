package main

// `nsbox -n NS OBJ [VERB ...]` whose OBJ is one of showJoinObjects and whose
// VERB is missing or one of showJoinVerbs only reads NS. For those, the ELF
// constructor (csrc/run_fast.c, nsb_join_show_netns) joins NS for the whole
// process before the Go runtime starts, as `ip -n` does, so that Go dials
// rtnetlink where it already is: no namespace handle to open and no thread
// to lock and move there and back (about 0.1 ms of a 3 ms command). The
// lists go to csrc/nsbox_gen.h (go generate ./cmd/nsbox); a word missing
// here only takes the slower path, and TestShowJoinWords checks that every
// pair listed prints what `ip -n NS OBJ show` prints.

var (
	showJoinObjects = []string{"link", "addr", "address", "route", "neigh", "neighbor", "neighbour"}
	showJoinVerbs   = []string{"show", "list", "lst", "ls"}
)

// inJoinedNetns reports whether the constructor joined the namespace that
// the resolved -n word ns stands for, so the process already is in it.
func inJoinedNetns(ns string) bool {
	j := ctorJoinedNetns()
	return j != "" && ns != "" && nsFilePath(ns) == j
}
