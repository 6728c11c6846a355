package main

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/bridge"
	"github.com/nsbox/nsbox/netns"
	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/rtnl"
)

// Every error nsbox prints is one line:
//
//	nsbox: COMMAND OBJECT: what failed: why
//
// naming the command and the object as the user typed them (link add veth0,
// addr add 10.0.0.1/24 dev eth0, bridge addif br0 eth1) and then the cause,
// without the Go package names (rtnl:, bridge:, netns:, nsnet:, nsclone:)
// that the library errors carry. shapeError turns what a command returned
// into that line; the library keeps its errors (and errors.Is still sees
// the errno through the shaped one).

// shapedError is an error with the CLI's message that still wraps the cause
// (for errors.Is, errors.As and the exit code).
type shapedError struct {
	msg string
	err error
}

func (e *shapedError) Error() string { return e.msg }
func (e *shapedError) Unwrap() error { return e.err }

// libPrefixes are the package names the library's errors start with.
var libPrefixes = []string{"rtnl: ", "bridge: ", "netns: ", "nsnet: ", "nsclone: child setup: ", "nsclone: "}

// shapeError rewrites err, returned by command c run with args (the words
// after the command), into the one line of the CLI.
func (e *env) shapeError(ctx context.Context, c *command, args []string, err error) error {
	msg := err.Error()
	if msg == "" {
		return err // an exit status that prints nothing
	}
	var ue *usageError
	if errors.As(err, &ue) {
		if m := pflagMessage(msg); m != msg {
			return &usageError{msg: m}
		}
		return err
	}
	out := msg
	if libTop(msg) {
		out = cliPrefix(c, args) + ": " + libCause(err)
		if errors.Is(err, unix.EEXIST) && c.name == "link" && len(args) > 1 && args[0] == "add" {
			out = cliPrefix(c, args) + ": " + e.linkClash(ctx, args[1:])
		}
	} else {
		out = stripLib(msg)
	}
	out = e.addAdvice(c, args, err, out)
	if out == msg {
		return err
	}
	return &shapedError{msg: out, err: err}
}

// libTop reports whether msg is a library error that no command wrapped: it
// starts with a package name (a command's own error starts with its word:
// "bridge addif", never "bridge: ").
func libTop(msg string) bool {
	for _, p := range libPrefixes {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// libCause returns the cause of the outermost library error in err's chain,
// without the operation and object it repeats from the command line (the
// prefix names them) and without package names; advice that a wrapper
// appended after the library's message stays.
func libCause(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		cause := ""
		switch le := e.(type) {
		case *rtnl.Error:
			cause = stripLib(le.Err.Error())
			if le.Message != "" {
				cause += " (" + le.Message + ")"
			}
		case *bridge.Error:
			cause = stripLib(le.Err.Error())
		case *netns.Error:
			cause = stripLib(le.Err.Error())
		case *nsclone.SetupError:
			cause = setupCause(le)
		default:
			continue
		}
		full, inner := err.Error(), e.Error()
		if i := strings.Index(full, inner); i >= 0 {
			cause += full[i+len(inner):]
		}
		return cause
	}
	return stripLib(err.Error())
}

// setupCause words an nsclone setup failure: the stage (what failed) and
// the errno (why); "before exec" is nsclone's name for the steps a caller
// adds (the network), so it is left out.
func setupCause(se *nsclone.SetupError) string {
	if se.Stage == nsclone.StageBeforeExec {
		return stripLib(se.Err.Error())
	}
	what := string(se.Stage)
	if se.Object != "" {
		what += " " + se.Object
	}
	return what + ": " + stripLib(se.Err.Error())
}

// stripLib removes the package names that stand after a ": " in msg, and
// nsclone's "before exec: " stage, keeping the rest of the chain.
func stripLib(msg string) string {
	for {
		changed := false
		for _, p := range append(libPrefixes, "before exec: ") {
			if strings.HasPrefix(msg, p) {
				msg, changed = msg[len(p):], true
			}
			if i := strings.Index(msg, ": "+p); i >= 0 {
				msg, changed = msg[:i+2]+msg[i+2+len(p):], true
			}
		}
		if !changed {
			return msg
		}
	}
}

// cliPrefix names the command and the object as typed: the command word,
// its subcommand and the object word(s) that follow.
func cliPrefix(c *command, args []string) string {
	words := []string{c.name}
	if len(args) == 0 {
		return c.name
	}
	sub, rest := args[0], args[1:]
	words = append(words, sub)
	switch c.name {
	case "addr", "route":
		// addr add 10.0.0.1/24 dev eth0, route add 10.1.0.0/16 [dev X]:
		// the prefix and the device, the words that name the object.
		for i := 0; i < len(rest); i++ {
			switch {
			case i == 0 && rest[i] != "dev":
				words = append(words, rest[i])
			case rest[i] == "dev" && i+1 < len(rest):
				words = append(words, "dev", rest[i+1])
				i++
			}
		}
	case "bridge":
		words = append(words, rest...)
	default:
		if len(rest) > 0 && (rest[0] == "dev" || rest[0] == "name") && len(rest) > 1 {
			rest = rest[1:]
		}
		if len(rest) > 0 {
			words = append(words, rest[0])
		}
	}
	if len(words) > 6 {
		words = words[:6]
	}
	return strings.Join(words, " ")
}

// linkClash says which name of `link add NAME ... [peer name PEER [netns
// NS]]` is taken when the kernel said EEXIST: NAME in the command's
// namespace, or the peer's name in its own.
func (e *env) linkClash(ctx context.Context, args []string) string {
	name := args[0]
	if name == "name" && len(args) > 1 {
		name, args = args[1], args[1:]
	}
	if c, err := e.rtnlConn(); err == nil {
		if _, err := c.LinkByName(ctx, name); err == nil {
			return "a link named " + name + " already exists" + e.inNSText()
		}
	}
	peer, peerNS := "", ""
	for i := 1; i+1 < len(args); i++ {
		switch {
		case args[i] == "peer" && args[i+1] == "name" && i+2 < len(args):
			peer = args[i+2]
		case args[i] == "netns" && peer != "":
			peerNS = args[i+1]
		}
	}
	if peer == "" {
		return "already exists"
	}
	where := e.inNSText()
	if peerNS != "" {
		where = " in namespace " + peerNS
	}
	return "peer " + peer + ": a link named " + peer + " already exists" + where
}

// inNSText names the namespace of -n for a message: " in namespace NS", or
// "" without -n.
func (e *env) inNSText() string {
	if e.netns == "" {
		return ""
	}
	return " in namespace " + e.netns
}

// refuseEmptyFlags fails closed on a flag given an empty value (--hostname
// "", --lease-file ""): an empty value is an error, never "not given", as in
// run (parseRunArgs) and as ip -n "" refuses.
func refuseEmptyFlags(cmd string, fs *pflag.FlagSet) error {
	var empty string
	fs.Visit(func(f *pflag.Flag) {
		if empty == "" && f.Value.Type() != "bool" && f.Value.String() == "" {
			empty = f.Name
		}
	})
	if empty != "" {
		return usagef("%s: --%s: empty value", cmd, empty)
	}
	return nil
}

// pflagArg matches pflag's message for a flag value it cannot parse. It is
// compiled on first use: every nsbox process would pay for it at start.
var pflagArg = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(.*)invalid argument "(.*)" for "(-[^"]*)" flag: (.*)$`)
})

// pflagMessage rewrites pflag's "invalid argument V for F flag: strconv...:
// parsing V: invalid syntax" as "F V: why", in the CLI's words.
func pflagMessage(msg string) string {
	m := pflagArg().FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	head, val, flag, cause := m[1], m[2], m[3], m[4]
	// The long spelling: pflag writes "-n, --netns".
	if i := strings.LastIndex(flag, ", "); i >= 0 {
		flag = flag[i+2:]
	}
	switch {
	case strings.HasPrefix(cause, "strconv.ParseBool"):
		cause = "takes no value"
		if flag == "--net" {
			cause += " (to join a namespace: --netns " + val + ")"
		}
		return head + flag + "=" + val + ": " + cause
	case strings.HasPrefix(cause, "strconv."):
		cause = "not a number"
	case strings.HasPrefix(cause, "time: "):
		cause = "not a duration (for example 500ms, 10s, 2m)"
	}
	return head + flag + " " + quoteIfOdd(val) + ": " + cause
}

// quoteIfOdd quotes v when it is empty or holds spaces or control bytes.
func quoteIfOdd(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\n\"'") || printable(v) != v {
		return `"` + printable(v) + `"`
	}
	return v
}

// addAdvice appends what to do for the failures a user meets first: a
// missing bridge (with the -n the command had), no privilege.
func (e *env) addAdvice(c *command, args []string, err error, msg string) string {
	ns := ""
	if e.netns != "" {
		ns = " -n " + e.netns
	}
	// A hint that names an nsbox command must keep the command's -n.
	if ns != "" && !strings.Contains(msg, "nsbox"+ns+" ") {
		msg = strings.ReplaceAll(msg, "(create it with nsbox bridge add ", "(create it with nsbox"+ns+" bridge add ")
	}
	if c.name == "bridge" && len(args) > 1 && errors.Is(err, bridge.ErrNoDevice) &&
		strings.HasSuffix(msg, "bridge "+args[1]+" does not exist") {
		msg += " (create it with nsbox" + ns + " bridge add " + args[1] + ")"
	}
	if errors.Is(err, unix.EPERM) && os.Geteuid() != 0 && !strings.Contains(msg, "needs root") {
		switch {
		case c.name == "netns" && len(args) > 0 && args[0] == "exec":
			msg += " (netns exec needs root, as ip netns exec does: it joins the namespace and mounts /sys in a new mount namespace)"
		case c.name != "run":
			msg += " (needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN)"
		}
	}
	return msg
}
