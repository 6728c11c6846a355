package main

// `nsbox [FLAG...] -n NS [FLAG...] OBJ [VERB ...]` whose OBJ is one of
// showJoinObjects, whose VERB is missing or one of showJoinVerbs and whose
// FLAGs are spellings of showJoinOpts only reads NS. For those, the ELF
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
	// showJoinOpts are the global options (globalOpts) that only shape the
	// output and take no value: they may stand around -n NS in such a line.
	showJoinOpts = []string{"-4", "-6", "-0", "-stats", "-details", "-oneline", "-brief", "-json", "-pretty"}
)

// showJoinFlags returns every word globalFlags reads as one of
// showJoinOpts: each name and alias, each abbreviation that resolves to it
// in ip's order (findGlobal), and each of those with two leading dashes.
func showJoinFlags() []string {
	opts := globalOpts()
	var words []string
	seen := map[string]bool{}
	for _, name := range showJoinOpts {
		o := findGlobal(opts, name)
		if o == nil || o.arg {
			panic("showJoinOpts: " + name + " is not a global option without a value")
		}
		for _, full := range append([]string{o.name}, o.aliases...) {
			for n := 2; n <= len(full); n++ {
				w := full[:n]
				if (o.exact && w != full) || findGlobal(opts, w) != o || seen[w] {
					continue
				}
				seen[w] = true
				words = append(words, w, "-"+w)
			}
		}
	}
	return words
}

// inJoinedNetns reports whether the constructor joined the namespace that
// the resolved -n word ns stands for, so the process already is in it.
func inJoinedNetns(ns string) bool {
	j := ctorJoinedNetns()
	return j != "" && ns != "" && nsFilePath(ns) == j
}
