package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
)

//go:generate sh -c "NSBOX_UPDATE_MAN=1 go test -run '^TestManPage$' ."

// The man page (doc/nsbox.1) is made from the help text itself: the global
// flags of nsbox -h and each command's help (nsbox COMMAND -h), set in
// roff around them. TestManPage regenerates it and fails when the file on
// disk differs, so it cannot drift from the help; `go generate ./cmd/nsbox`
// (or make man) rewrites it.

// manPath is the man page, relative to this package.
const manPath = "../../doc/nsbox.1"

// writeManPage writes the man page in roff (man macros).
func (e *env) writeManPage(ctx context.Context, w io.Writer) error {
	var global bytes.Buffer
	e.printHelp(&global)
	flags := section(global.String(), "global flags", "commands:")

	var b strings.Builder
	b.WriteString(`.TH NSBOX 1 "" "nsbox" "User Commands"
.SH NAME
nsbox \- Linux namespaces, sandboxes, network namespaces, links, addresses,
routes, bridges and DHCP, in the words of unshare, ip, brctl and dhclient
.SH SYNOPSIS
.B nsbox
[\fB\-n\fR \fINS\fR] [\fB\-j\fR] [\fB\-b\fR \fIFILE\fR]
\fICOMMAND\fR [\fIARGS\fR...]
.br
.B nsbox
\fICOMMAND\fR [\fISUBCOMMAND\fR] \fB\-h\fR
.SH DESCRIPTION
nsbox spawns processes in new Linux namespaces (as
.BR unshare (1)
and
.BR nsenter (1)),
and manages named network namespaces, links, addresses, routes, bridges
and DHCP leases (as
.BR ip (8),
.BR brctl (8)
and
.BR dhclient (8)),
in one binary and one Go module. Its output reads like theirs.
Every command, command group and subcommand takes
.BR \-h ,
.B \-\-help
or
.B help
and then prints its usage and does nothing else.
.SH OPTIONS
Global flags come before the command.
.PP
.nf
`)
	b.WriteString(roffVerbatim(flags))
	b.WriteString(".fi\n.SH COMMANDS\n")
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		var h bytes.Buffer
		if err := e.printCommandHelp(ctx, &h, c, ""); err != nil {
			return fmt.Errorf("man page: help of %s: %w", c.name, err)
		}
		text := strings.TrimRight(h.String(), "\n")
		if i := strings.LastIndex(text, "\nGlobal flags (-n NS"); i >= 0 {
			text = strings.TrimRight(text[:i], "\n")
		}
		b.WriteString(".SS " + c.name + "\n.nf\n")
		b.WriteString(roffVerbatim(text + "\n"))
		b.WriteString(".fi\n")
	}
	b.WriteString(`.SH EXIT STATUS
0 on success, 1 when the operation failed, 2 for a usage error.
.B run
and
.B netns exec
return the command's status, 128+N when it died of signal N, 125 when
nsbox failed before the command started, 126 when the command cannot be
executed and 127 when it was not found.
Every error is one line on standard error:
.IP
nsbox: COMMAND OBJECT: what failed: why
.SH FILES
.TP
.I /run/netns/NAME
named network namespaces, shared with
.BR ip\-netns (8)
.TP
.I /etc/netns/NAME/
files bound over
.I /etc
by
.B netns exec
.TP
.I /var/lib/nsbox/
DHCP lease files
.SH SEE ALSO
.BR ip (8),
.BR ip\-netns (8),
.BR unshare (1),
.BR nsenter (1),
.BR brctl (8),
.BR dhclient (8),
.BR bwrap (1)
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// section returns the lines of text from the one that starts with from
// (excluded) up to the one that starts with to (excluded).
func section(text, from, to string) string {
	var out []string
	in := false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, from):
			in = true
			continue
		case strings.HasPrefix(l, to):
			in = false
		}
		if in {
			out = append(out, l)
		}
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
}

// roffVerbatim escapes text for a .nf block: backslashes and minus signs
// (so that options copy and paste as ASCII), and lines that would start
// with a control character.
func roffVerbatim(text string) string {
	text = strings.ReplaceAll(text, `\`, `\e`)
	text = strings.ReplaceAll(text, "-", `\-`)
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
