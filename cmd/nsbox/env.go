package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// env is the state of one nsbox invocation: its streams, the global flags and
// the resources (netlink connections, one per namespace) shared by the
// commands of a batch. Nothing here is global: realMain builds one per call.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	netns string // -n NAME: run commands inside this named network namespace
	json  bool   // -j: print JSON

	showVersion bool // --version (-V): print the version and stop

	// iproute2's output options (globalflags.go).
	brief   bool // -br: one line per object
	pretty  bool // -p: indented JSON (with -j), as ip -j -p
	stats   int  // -s: statistics; -s -s: more
	details int  // -d: details
	oneline bool // -o: each record on one line, "\" for its line breaks
	family  int  // -4, -6, -0 (-f): unix.AF_INET, AF_INET6, AF_PACKET; 0: any

	// resources are opened once per key (for example "rtnl:NAME") and
	// closed when the invocation ends, so a batch reuses them.
	resources map[string]io.Closer
	keys      []string // opening order, closed in reverse

	table []*command // the command table, built on first lookup
}

func newEnv(stdin io.Reader, stdout, stderr io.Writer) *env {
	return &env{stdin: stdin, stdout: stdout, stderr: stderr, resources: map[string]io.Closer{}}
}

// cached returns the resource stored under key, opening it with open the
// first time. Commands use it for connections that a batch should share.
func (e *env) cached(key string, open func() (io.Closer, error)) (io.Closer, error) {
	if r, ok := e.resources[key]; ok {
		return r, nil
	}
	r, err := open()
	if err != nil {
		return nil, err
	}
	e.resources[key] = r
	e.keys = append(e.keys, key)
	return r, nil
}

// close releases every cached resource, newest first.
func (e *env) close() {
	for i := len(e.keys) - 1; i >= 0; i-- {
		_ = e.resources[e.keys[i]].Close()
	}
	e.resources = map[string]io.Closer{}
	e.keys = nil
}

// command is one word of the CLI (run, netns, link, ...).
type command struct {
	name    string
	aliases []string
	usage   string // the synopsis lines printed by help
	// run executes the command with the arguments after its name.
	run func(ctx context.Context, e *env, args []string) error
	// quick is set for commands that make a few netlink requests and end
	// (link, addr, route, neigh, bridge, version): they run without
	// SIGINT/SIGTERM handlers, whose goroutine blocked in the runtime's
	// signal queue costs a thread hand-off at every start; those signals
	// end them as they end ip. The others cancel their context on them.
	quick bool
	// noBatch is set for commands that cannot run as a line of -b
	// (they replace or own the process: run, netns exec, dhcp, dhcpd).
	noBatch bool
	// ownHelp is set for commands whose flag parser prints their help
	// for -h (with the flags) and acts on nothing then: run, dhcp, dhcpd.
	ownHelp bool
	// hidden commands are left out of the help (__complete).
	hidden bool
}

// withOwnHelp marks c as parsing -h itself.
func withOwnHelp(c *command) *command {
	c.ownHelp = true
	return c
}

// commands lists every command word, in the order help shows them.
func commands() []*command {
	return []*command{
		withOwnHelp(runCommand()),
		netnsCommand(),
		linkCommand(),
		addrCommand(),
		routeCommand(),
		neighCommand(),
		bridgeCommand(),
		withOwnHelp(dhcpCommand()),
		withOwnHelp(dhcpdCommand()),
		natCommand(),
		poolCommand(),
		withOwnHelp(psCommand()),
		withOwnHelp(enterCommand()),
		withOwnHelp(killCommand()),
		versionCommand(),
		completionCommand(),
		helpCommand(),
		completeCommand(),
	}
}

// lookupCommand finds the command named word (or one of its aliases). The
// table is built once per invocation, not once per batch line.
func (e *env) lookupCommand(word string) *command {
	if e.table == nil {
		e.table = commands()
	}
	for _, c := range e.table {
		if c.name == word {
			return c
		}
		for _, a := range c.aliases {
			if a == word {
				return c
			}
		}
	}
	// The objects nsbox shares with ip may be abbreviated as ip allows
	// (ip.c's command table, in its order): a, r, n, l, li, net...
	for _, o := range ipObjects {
		if matches(word, o.full) {
			for _, c := range e.table {
				if c.name == o.cmd {
					return c
				}
			}
			return nil
		}
	}
	return nil
}

// ipObjects are the words of ip's command table that nsbox also has, in
// ip's order, with the nsbox command each names. Other nsbox commands (run,
// bridge, dhcp, ...) are matched exactly.
var ipObjects = []struct{ full, cmd string }{
	{"address", "addr"}, {"route", "route"}, {"neighbor", "neigh"}, {"neighbour", "neigh"},
	{"link", "link"}, {"netns", "netns"},
}

// main parses the global flags and runs one command or a batch.
func (e *env) main(ctx context.Context, args []string) error {
	rest, batch, help, err := e.globalFlags(args)
	if err != nil {
		return err
	}
	if e.showVersion {
		return e.printVersion()
	}
	if help {
		e.printHelp(e.stdout)
		return nil
	}
	if batch != "" {
		if len(rest) > 0 {
			return usagef("-b %s takes no command on the command line (found %q)", batch, rest[0])
		}
		ctx, stop := withSignals(ctx)
		defer stop()
		return e.runBatch(ctx, batch)
	}
	if len(rest) == 0 {
		e.printHelp(e.stderr)
		return usagef("no command given (try nsbox -h)")
	}
	return e.dispatch(ctx, rest, false)
}

// dispatch runs the command named by args[0].
func (e *env) dispatch(ctx context.Context, args []string, inBatch bool) error {
	c := e.lookupCommand(args[0])
	if c == nil {
		return usagef("unknown command %q (try nsbox -h)", args[0])
	}
	if sub, ok := helpRequest(c, args[1:]); ok && !c.hidden {
		return e.printCommandHelp(ctx, e.stdout, c, sub)
	}
	if inBatch && c.noBatch {
		return usagef("%s cannot run inside a batch", c.name)
	}
	if e.netns != "" {
		ns, err := resolveNS("-n", e.netns)
		if err != nil {
			return err
		}
		e.netns = ns
	}
	if !c.quick && !inBatch {
		var stop context.CancelFunc
		ctx, stop = withSignals(ctx)
		defer stop()
	}
	if err := c.run(ctx, e, args[1:]); err != nil {
		return e.shapeError(ctx, c, args[1:], err)
	}
	return nil
}

// runBatch runs one command per line of the file named path ("-" for stdin).
// Blank lines and lines starting with # are skipped. A line may start with
// "-n NAME" to run in a named namespace. It stops at the first failure and
// names its line; the lines before it stay done.
func (e *env) runBatch(ctx context.Context, path string) error {
	var r io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("batch: %w", err)
		}
		defer f.Close()
		r = f
	}
	defaultNS := e.netns
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for lineNo := 1; sc.Scan(); lineNo++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("batch: line %d: %w", lineNo, err)
		}
		words, err := splitLine(sc.Text())
		if err != nil {
			return &usageError{msg: fmt.Sprintf("batch %s: line %d: %v", path, lineNo, err)}
		}
		if len(words) == 0 || strings.HasPrefix(words[0], "#") {
			continue
		}
		e.netns = defaultNS
		if words[0] == "-n" || words[0] == "--netns" {
			if len(words) < 2 {
				return &usageError{msg: fmt.Sprintf("batch %s: line %d: -n needs a namespace name", path, lineNo)}
			}
			if words[1] == "" {
				return &usageError{msg: fmt.Sprintf("batch %s: line %d: -n: empty namespace name", path, lineNo)}
			}
			e.netns, words = words[1], words[2:]
		}
		if len(words) == 0 {
			return &usageError{msg: fmt.Sprintf("batch %s: line %d: no command", path, lineNo)}
		}
		if err := e.dispatch(ctx, words, true); err != nil {
			return &lineError{path: path, line: lineNo, err: err}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("batch %s: read: %w", path, err)
	}
	return nil
}

// lineError names the batch line that failed; its exit code is the line's.
type lineError struct {
	path string
	line int
	err  error
}

func (e *lineError) Error() string {
	return fmt.Sprintf("batch %s: line %d: %v", e.path, e.line, e.err)
}

func (e *lineError) Unwrap() error { return e.err }

// splitLine splits a batch line into words: white space separates them, and
// single or double quotes group them, as in ip -batch.
func splitLine(s string) ([]string, error) {
	if !strings.ContainsAny(s, `'"`) && utf8.ValidString(s) {
		// The common line: no quotes, so the words are substrings of the
		// line (no copy per word).
		var words []string
		start := -1
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case ' ', '\t', '\r':
				if start >= 0 {
					words = append(words, s[start:i])
					start = -1
				}
			default:
				if start < 0 {
					start = i
				}
			}
		}
		if start >= 0 {
			words = append(words, s[start:])
		}
		return words, nil
	}
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// printHelp writes the global usage: flags and every command's synopsis.
func (e *env) printHelp(w io.Writer) {
	fmt.Fprintln(w, "usage: nsbox [-n NS] [-j] [-b FILE] COMMAND [ARGS...]")
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "global flags (before the command):")
	fmt.Fprintln(w, "  -n NS     run the command inside network namespace NS (like ip -n): a name of")
	fmt.Fprintln(w, "            /run/netns, a path (/proc/PID/ns/net, a bind mount) or a pid; with")
	fmt.Fprintln(w, "            run, the namespace of --bridge (run --netns NS joins NS)")
	fmt.Fprintln(w, "  -j        print JSON (keys follow ip -j)")
	fmt.Fprintln(w, "  -b FILE   run one command per line of FILE (- for stdin) over one netlink")
	fmt.Fprintln(w, "            connection per namespace; a line may start with -n NAME. It stops")
	fmt.Fprintln(w, "            at the first failure and names its line; earlier lines stay done")
	fmt.Fprintln(w, "  -h        this help; COMMAND -h, COMMAND SUBCOMMAND -h and help COMMAND")
	fmt.Fprintln(w, "            print the help of one command and do nothing else")
	fmt.Fprintln(w, "  -V        print the version and the commit (also --version, nsbox version)")
	fmt.Fprintln(w, "  -br -4 -6 -s -d -p -o")
	fmt.Fprintln(w, "            iproute2's output flags, with ip's output byte for byte: -br brief")
	fmt.Fprintln(w, "            (link, addr, neigh), -4/-6 one family, -s statistics (-s -s more;")
	fmt.Fprintln(w, "            neigh: ages, references, probes), -d details, -p indented JSON")
	fmt.Fprintln(w, "            (with -j), -o one line per record (\\ for its line breaks)")
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "commands:")
	cs := commands()
	for _, c := range cs {
		if c.hidden {
			continue
		}
		for _, l := range strings.Split(strings.TrimRight(c.usage, "\n"), "\n") {
			fmt.Fprintln(w, "  "+l)
		}
	}
}

// withSignals returns ctx cancelled by SIGINT or SIGTERM, for the commands
// that wait (run, netns exec, dhcp, a batch...).
func withSignals(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, unix.SIGINT, unix.SIGTERM)
}
