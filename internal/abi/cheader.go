package abi

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/nsbox/nsbox/internal/names"
)

// Markers of the section of csrc/nsbox_gen.h that CSection renders.
const (
	CSectionBegin = "/* begin abi */\n"
	CSectionEnd   = "/* end abi */\n"
)

// CSection renders the part of csrc/nsbox_gen.h that comes from this
// package and internal/names: the stage numbers and forwarded signals (the
// part nsinit uses, between "begin nsinit" and "end nsinit" markers, which
// csrc/gen_init.sh hashes), the defaults and the name rules. It depends on
// no cgo package, so it can always be regenerated (go generate
// ./internal/abi), even while C that uses a new stage does not compile yet.
func CSection() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("%s", CSectionBegin)
	p("/* begin nsinit */\n")
	p("/* Stages of the child's setup (internal/abi.Stages), reported with the\n * errno of the failing call. */\n")
	p("enum nsc_stage {\n")
	for i, s := range Stages {
		if i == 0 {
			p("\tNSC_OK = 0,\n")
			continue
		}
		p("\tNSC_STAGE_%s = %d,\n", s, i)
	}
	p("};\n\n")
	p("/* Signals forwarded to the payload (internal/abi.ForwardedSignals). */\n")
	p("#define NSB_NFWD %d\n", len(ForwardedSignals))
	var sigs []string
	for _, s := range ForwardedSignals {
		sigs = append(sigs, fmt.Sprint(int(s)))
	}
	p("#define NSB_FWD_SIGNALS {%s}\n", strings.Join(sigs, ", "))
	p("/* end nsinit */\n\n")

	p("/* Defaults (internal/abi). */\n")
	p("#define NSB_DEFAULT_PATH %q\n", DefaultPath)
	p("#define NSB_DEFAULT_IFNAME %q\n", DefaultIfName)
	p("#define NSB_HOST_IFNAME_FMT %q\n", HostIfNameFormat)
	p("#define NSB_NETNS_DIR %q\n", NetnsDir)
	p("#define NSB_NETNS_ETC_DIR %q\n", NetnsEtcDir)
	p("/* The wait for a veth's IFF_RUNNING (abi.LinkRunningWait, LinkRunningPoll), ns. */\n")
	p("#define NSB_LINK_RUNNING_WAIT_NS %dLL\n", LinkRunningWait.Nanoseconds())
	p("#define NSB_LINK_RUNNING_POLL_NS %dLL\n\n", LinkRunningPoll.Nanoseconds())

	p("/* Name rules (internal/names): the longest name, and which ASCII bytes may\n")
	p(" * appear in one. The fast paths take only ASCII names; every rule also\n")
	p(" * refuses \"\", \".\" and \"..\". */\n")
	p("struct nsb_name_rule {\n\tunsigned max;\n\tunsigned char ascii_ok[128];\n};\n")
	for _, r := range []struct {
		c    string
		rule names.Rule
	}{{"nsb_rule_netns", names.Netns}, {"nsb_rule_link", names.Link}} {
		ok := r.rule.ASCII()
		p("static const struct nsb_name_rule %s __attribute__((unused)) = {%d, {", r.c, r.rule.Max)
		for i, v := range ok {
			if i%32 == 0 {
				p("\n\t")
			}
			if v {
				p("1,")
			} else {
				p("0,")
			}
		}
		p("\n}};\n")
	}
	p("%s", CSectionEnd)
	return b.Bytes()
}

// ReplaceCSection returns header with its abi section replaced by
// CSection, or false if header has no such section.
func ReplaceCSection(header []byte) ([]byte, bool) {
	begin := bytes.Index(header, []byte(CSectionBegin))
	end := bytes.Index(header, []byte(CSectionEnd))
	if begin < 0 || end < begin {
		return nil, false
	}
	out := append([]byte(nil), header[:begin]...)
	out = append(out, CSection()...)
	return append(out, header[end+len(CSectionEnd):]...), true
}
