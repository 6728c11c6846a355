package cni

import (
	"fmt"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
)

// logger appends one line per event to the config's "log" file. A plugin's
// stdout belongs to the protocol and its stderr is often dropped, so this
// file is where a runtime's user looks. A nil logger logs nothing.
type logger struct {
	f      *os.File
	prefix string
}

func openLog(path, cmd string, a *skel.CmdArgs) *logger {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil // logging must never make an operation fail
	}
	return &logger{f: f, prefix: fmt.Sprintf("pid %d %s container %s ifname %s netns %s:", os.Getpid(), cmd, a.ContainerID, a.IfName, a.Netns)}
}

func (l *logger) printf(format string, args ...any) {
	if l == nil {
		return
	}
	// One write per line: O_APPEND keeps concurrent plugins' lines whole.
	line := time.Now().UTC().Format(time.RFC3339Nano) + " " + l.prefix + " " + fmt.Sprintf(format, args...) + "\n"
	_, _ = l.f.WriteString(line)
}

func (l *logger) close() {
	if l != nil {
		l.f.Close()
	}
}
