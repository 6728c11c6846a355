package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/nsbox/nsbox/netns"
)

// Shell completion works as cobra's does: the scripts that
// `nsbox completion bash|zsh` prints are thin, and ask the binary itself
// (`nsbox __complete WORD...`, the words typed so far, the last one being
// completed) for the candidates. The candidates come from the same tables
// as the help: the command table, the usage entries, the global options
// and the flags each command's help lists, plus the names that exist now
// (namespaces in /run/netns, links of the namespace -n names).

const completionUsage = `completion bash|zsh            print a shell completion script (make install installs both):
                               source <(nsbox completion bash)`

func completionCommand() *command {
	return &command{name: "completion", usage: completionUsage, run: func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 {
			return usagef("completion: expected bash or zsh")
		}
		switch args[0] {
		case "bash":
			_, err := io.WriteString(e.stdout, bashCompletion)
			return err
		case "zsh":
			_, err := io.WriteString(e.stdout, zshCompletion)
			return err
		}
		return usagef("completion: unknown shell %q (bash or zsh)", args[0])
	}}
}

// completeCommand is the hidden __complete word the scripts call.
func completeCommand() *command {
	return &command{name: "__complete", hidden: true, run: func(ctx context.Context, e *env, args []string) error {
		for _, c := range e.complete(ctx, args) {
			fmt.Fprintln(e.stdout, c)
		}
		return nil
	}}
}

const bashCompletion = `# bash completion for nsbox (nsbox completion bash). The candidates come
# from nsbox itself: nsbox __complete WORD... prints them.
_nsbox() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "$cur"))
}
complete -F _nsbox nsbox
`

const zshCompletion = `#compdef nsbox
# zsh completion for nsbox (nsbox completion zsh). The candidates come from
# nsbox itself: nsbox __complete WORD... prints them.
_nsbox() {
	local -a cands
	cands=("${(@f)$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	compadd -a cands
}
if [[ "${funcstack[1]}" = "_nsbox" ]]; then
	_nsbox "$@"
else
	compdef _nsbox nsbox
fi
`

// complete returns the candidates for the last of words (the words after
// "nsbox"; the last is the one being completed, possibly empty), sorted.
func (e *env) complete(ctx context.Context, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, done := words[len(words)-1], words[:len(words)-1]
	var cands []string
	// The global options, before the command word.
	opts := globalOpts()
	i := 0
	for i < len(done) && strings.HasPrefix(done[i], "-") {
		opt := strings.SplitN(done[i], "=", 2)[0]
		if strings.HasPrefix(opt, "--") {
			opt = opt[1:]
		}
		o := findGlobal(opts, opt)
		if o != nil && o.arg && !strings.Contains(done[i], "=") {
			if i+1 == len(done) {
				if o.name == "-netns" {
					return filterPrefix(namespaces(), cur)
				}
				return nil // -b FILE, -family: the shell's own
			}
			if o.name == "-netns" {
				e.netns = done[i+1]
			}
			i++
		}
		i++
	}
	done = done[i:]
	if len(done) == 0 {
		if strings.HasPrefix(cur, "-") {
			for _, o := range opts {
				cands = append(cands, o.name)
				if !o.exact {
					cands = append(cands, "-"+o.name) // --netns
				}
			}
			cands = append(cands, "-n", "-j", "-b", "-h", "-V", "-br", "-s", "-d", "-p", "-o")
		} else {
			for _, c := range commands() {
				if !c.hidden {
					cands = append(cands, c.name)
				}
			}
		}
		return filterPrefix(cands, cur)
	}
	c := e.lookupCommand(done[0])
	if c == nil {
		return nil
	}
	rest := done[1:]
	switch {
	case c.name == "help":
		if len(rest) == 0 {
			for _, c := range commands() {
				if !c.hidden {
					cands = append(cands, c.name)
				}
			}
		} else if hc := e.lookupCommand(rest[0]); hc != nil && len(rest) == 1 {
			cands = subcommands(hc)
		}
	case c.name == "completion":
		if len(rest) == 0 {
			cands = []string{"bash", "zsh"}
		}
	case c.ownHelp:
		cands = e.completeFlags(ctx, c, rest, cur)
	default:
		cands = e.completeWords(ctx, c, rest)
	}
	return filterPrefix(cands, cur)
}

// longFlag finds the --flags in a help text. It is compiled on first use:
// every nsbox process would pay for it at start.
var longFlag = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?:^|[\s\[|,])(--[a-z][a-z0-9-]*)`)
})

// completeFlags completes a command that parses flags (run, dhcp, dhcpd):
// its flags as its help lists them, and the value of a flag that names a
// namespace or a device.
func (e *env) completeFlags(ctx context.Context, c *command, rest []string, cur string) []string {
	for _, w := range rest {
		if w == "--" {
			return nil // the payload's words
		}
	}
	if len(rest) > 0 {
		switch rest[len(rest)-1] {
		case "--netns":
			return namespaces()
		case "--bridge", "--ifname":
			return e.links(ctx)
		}
	}
	var help bytes.Buffer
	if err := e.printCommandHelp(ctx, &help, c, ""); err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range longFlag().FindAllStringSubmatch(help.String(), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	if c.name != "run" && !strings.HasPrefix(cur, "-") {
		out = append(out, e.links(ctx)...) // dhcp DEV, dhcpd DEV
	}
	return out
}

// completeWords completes an ip-style command (link, addr, route, bridge,
// netns, ...): its subcommands, then the keywords of the subcommand's
// synopsis, and names where the synopsis wants a device or a namespace.
func (e *env) completeWords(ctx context.Context, c *command, rest []string) []string {
	if len(rest) == 0 {
		return append(subcommands(c), "help")
	}
	sub := rest[0]
	prev := rest[len(rest)-1]
	switch prev {
	case "dev", "master", "name", "peer", "link", "to":
		if prev == "peer" {
			return []string{"name"}
		}
		return e.links(ctx)
	case "netns":
		if len(rest) > 1 {
			return namespaces()
		}
	}
	if len(rest) == 1 { // the first word after the subcommand
		switch {
		case c.name == "netns" && sub != "add" && sub != "list" && sub != "show" && sub != "identify":
			return namespaces()
		case c.name == "link" && sub != "add", c.name == "bridge" && sub != "add" && sub != "addbr":
			return e.links(ctx)
		}
	}
	if c.name == "bridge" && len(rest) == 2 && (sub == "addif" || sub == "delif") {
		return e.links(ctx)
	}
	return synopsisKeywords(c, sub)
}

// subcommands returns the subcommand words of c's usage entries.
func subcommands(c *command) []string {
	var out []string
	seen := map[string]bool{}
	for _, en := range usageEntries(c.usage) {
		f := strings.Fields(firstLine(en))
		if len(f) < 2 || f[0] != c.name {
			continue
		}
		for _, s := range strings.Split(f[1], "|") {
			if isKeyword(s) && !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// synopsisKeywords returns the literal words of the synopses of c's
// subcommand sub (type, peer, dev, via, up, mtu...).
func synopsisKeywords(c *command, sub string) []string {
	var out []string
	seen := map[string]bool{sub: true}
	for _, en := range usageEntries(c.usage) {
		if !entryHasSub(en, sub) {
			continue
		}
		// The synopsis is the first line up to its description (three
		// spaces); in the description, the words of a list "a | b N | c".
		first := firstLine(en)
		syn, desc := first, en[len(first):]
		if i := strings.Index(first, "   "); i > 0 {
			syn, desc = first[:i], en[i:]
		}
		words := strings.FieldsFunc(syn, func(r rune) bool { return strings.ContainsRune(" []|{}(),.", r) })[1:]
		if segs := strings.Split(desc, "|"); len(segs) > 1 {
			for i, seg := range segs {
				f := strings.Fields(seg)
				if len(f) == 0 {
					continue
				}
				if i == 0 {
					words = append(words, f[len(f)-1])
				} else {
					words = append(words, f[0])
				}
			}
		}
		for _, w := range words {
			if isKeyword(w) && !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	return out
}

// isKeyword reports whether w is a literal word of a synopsis (lowercase
// letters, digits, _ and -), not a placeholder (NAME, DEV).
func isKeyword(w string) bool {
	if w == "" || w[0] == '-' {
		return false
	}
	for _, r := range w {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// namespaces lists /run/netns.
func namespaces() []string {
	names, _ := netns.List()
	return names
}

// links lists the links of the namespace -n names (or nsbox's), or nothing
// when they cannot be read.
func (e *env) links(ctx context.Context) []string {
	if e.netns != "" {
		ns, err := resolveNS("-n", e.netns)
		if err != nil {
			return nil
		}
		e.netns = ns
	}
	c, err := e.rtnlConn()
	if err != nil {
		return nil
	}
	ls, err := c.Links(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return out
}

// filterPrefix keeps the candidates that start with prefix, sorted, once.
func filterPrefix(cands []string, prefix string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range cands {
		if strings.HasPrefix(c, prefix) && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}
