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
	p("/* Taken: the next names, from the pid and the try number (abi.HostIfNameNextFormat). */\n")
	p("#define NSB_HOST_IFNAME_NEXT_FMT %q\n", HostIfNameNextFormat)
	p("#define NSB_HOST_IFNAME_TRIES %d\n", HostIfNameTries)
	p("#define NSB_NETNS_DIR %q\n", NetnsDir)
	p("#define NSB_NETNS_ETC_DIR %q\n", NetnsEtcDir)
	p("/* The wait for a veth's IFF_RUNNING (abi.LinkRunningWait, LinkRunningPoll), ns. */\n")
	p("#define NSB_LINK_RUNNING_WAIT_NS %dLL\n", LinkRunningWait.Nanoseconds())
	p("#define NSB_LINK_RUNNING_POLL_NS %dLL\n\n", LinkRunningPoll.Nanoseconds())

	p("/* The filesystem view (internal/abi view.go): the kinds of its steps, the\n")
	p(" * flags of a bind, a tmpfs's attributes and default mode, and the steps of\n")
	p(" * its built-in parts (--dev, a view's /proc), names below their directory. */\n")
	p("enum nsc_fs_kind { NSC_FS_BIND = %d, NSC_FS_NEW = %d, NSC_FS_SYMLINK = %d, NSC_FS_RO_SELF = %d };\n", FSBind, FSNew, FSSymlink, FSROSelf)
	p("#define NSC_FS_RDONLY %d\n#define NSC_FS_FILE %d\n", FSReadOnly, FSFile)
	p("#define NSB_FS_NOPT %d\n", FSMaxOpts)
	p("#define NSB_TMPFS_ATTR %#xUL\n#define NSB_TMPFS_DEFAULT_MODE %#o\n", TmpfsAttr, TmpfsDefaultMode)
	p("#define NSB_PROC_DIR %q\n", ProcDir)
	p("struct nsb_fs_step {\n\tint kind, flags;\n\tconst char *source;\n\tconst char *opt[NSB_FS_NOPT];\n\tunsigned long attr;\n\tconst char *name;\n};\n")
	for _, part := range []struct {
		c     string
		steps []FSStep
	}{{"dev", DevSteps}, {"proc", ProcSteps}} {
		p("#define NSB_N%s_STEPS %d\n", strings.ToUpper(part.c), len(part.steps))
		p("static const struct nsb_fs_step nsb_%s_steps[NSB_N%s_STEPS] __attribute__((unused)) = {\n", part.c, strings.ToUpper(part.c))
		for _, st := range part.steps {
			if len(st.Opts) > FSMaxOpts {
				panic("abi: a view step with more than FSMaxOpts options")
			}
			var opts []string
			for i, o := range st.Opts {
				if i%2 == 1 && o == "" {
					opts = append(opts, "0") // a flag
				} else {
					opts = append(opts, fmt.Sprintf("%q", o))
				}
			}
			if len(opts) == 0 {
				opts = []string{"0"}
			}
			p("\t{%d, %d, %s, {%s}, %#xUL, %q},\n", st.Kind, st.Flags, cString(st.Source), strings.Join(opts, ", "), st.Attr, st.Name)
		}
		p("};\n")
	}
	p("\n")

	p("/* Name rules (internal/names): the longest name, which ASCII bytes may\n")
	p(" * start one and which may follow. The fast paths take only ASCII names;\n")
	p(" * every rule also refuses \"\", \".\" and \"..\". */\n")
	p("%s", names.CRuleDef)
	p("%s", names.Netns.Table().C("nsb_rule_netns"))
	p("%s", names.Link.Table().C("nsb_rule_link"))
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

// cString renders s as a C string literal, "" as a null pointer.
func cString(s string) string {
	if s == "" {
		return "0"
	}
	return fmt.Sprintf("%q", s)
}
