// Command nsbox spawns processes in fresh Linux namespaces and manages network
// namespaces, links, addresses, routes, bridges and DHCP leases, with the words
// of unshare, ip, brctl and dhclient. See README.md for the walkthrough.

// GOMAXPROCS comes from the CPU affinity alone, as before Go 1.25: every
// nsbox process is short or mostly waits, so reading the cgroup's CPU limit
// at each start (three files and mountinfo, before main) and the
// goroutine that follows changes of it cost more than they bring.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nsbox/nsbox/cni"
	_ "github.com/nsbox/nsbox/internal/cpupin" // undoes the constructor's one-CPU pin, at init
)

func main() {
	if cni.Invoked() { // CNI_COMMAND set: speak CNI on stdin/stdout only
		os.Exit(cni.Main())
	}
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// realMain runs nsbox with args (without the program name) and returns the
// process exit code. Every error is printed here, as one "nsbox:" line.
func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := newEnv(stdin, stdout, stderr)
	defer e.close()
	err := e.main(context.Background(), args)
	if err == nil {
		return exitOK
	}
	code := exitCodeOf(err)
	if msg := errorLine(err); msg != "" {
		fmt.Fprintln(stderr, "nsbox: "+msg)
	}
	return code
}

// errorLine flattens err to the one line printed after "nsbox: ".
func errorLine(err error) string {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, "\n", "; ")
	return strings.TrimPrefix(msg, "nsbox: ")
}
