package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nsbox/nsbox/netns"
)

// A network namespace is named on the command line (-n, netns exec, netns
// pids, run --netns, link set DEV netns) the way ip -n names it, plus
// nsenter's targets:
//
//   - a name: /run/netns/NAME;
//   - a path, any word that contains '/': /proc/PID/ns/net, /run/netns/X,
//     any bind mount of a namespace file;
//   - a pid, all digits, when no /run/netns entry has that name:
//     /proc/PID/ns/net.
//
// An empty word is refused (fail closed: an empty variable in a script must
// not mean the host's namespace).

// resolveNS turns the namespace word arg into what the commands open: a
// name of /run/netns or a path. flag names arg's place for usage errors
// ("-n", "netns exec"). A name is returned whether or not it exists (the
// command then says so); a pid whose process is gone is an error here.
func resolveNS(flag, arg string) (string, error) {
	switch {
	case arg == "":
		return "", usagef("%s: empty namespace name", flag)
	case strings.Contains(arg, "/"):
		if strings.IndexByte(arg, 0) >= 0 {
			return "", usagef("%s %s: invalid namespace path: contains NUL", flag, quoteIfOdd(arg))
		}
		return arg, nil
	}
	if err := netns.ValidateName(arg); err != nil {
		return "", usagef("%s %s: invalid namespace name: %s", flag, quoteIfOdd(arg), nameRuleBroken(err))
	}
	if _, err := os.Lstat(filepath.Join(netns.RunDir, arg)); err == nil {
		return arg, nil
	}
	if pid, ok := pidWord(arg); ok {
		p := "/proc/" + strconv.Itoa(pid) + "/ns/net"
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("netns %s: no such namespace, nor a process with that pid (see nsbox netns list)", arg)
		}
		return p, nil
	}
	return arg, nil
}

// nsFilePath returns the namespace file that the resolved word ns (a name
// or a path, from resolveNS) stands for.
func nsFilePath(ns string) string {
	if strings.Contains(ns, "/") {
		return ns
	}
	return filepath.Join(netns.RunDir, ns)
}

// pidWord reports whether w is a pid: decimal digits only, positive.
func pidWord(w string) (int, bool) {
	if w == "" || len(w) > 10 {
		return 0, false
	}
	for i := 0; i < len(w); i++ {
		if w[i] < '0' || w[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(w)
	return n, err == nil && n > 0
}

// nameRuleBroken returns the rule a name broke (ValidateName's cause
// without its "invalid namespace name" prefix), so that the CLI says it once.
func nameRuleBroken(err error) string {
	var ne *netns.Error
	if errors.As(err, &ne) {
		err = ne.Err
	}
	msg := err.Error()
	return strings.TrimPrefix(msg, netns.ErrInvalidName.Error()+": ")
}
