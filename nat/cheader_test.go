package nat

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// cHeaderPath is the C header that go generate writes from this package:
// the netlink messages of Publish and Unpublish for run's C fast path
// (csrc/nft_fast.c).
const cHeaderPath = "../csrc/nat_gen.h"

// TestCHeader fails when csrc/nat_gen.h is not what this package's rules
// make of it; with NSBOX_GENERATE=1 (go generate ./nat) it writes the file.
func TestCHeader(t *testing.T) {
	want := cHeader(t)
	if os.Getenv("NSBOX_GENERATE") == "1" {
		if err := os.WriteFile(cHeaderPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(cHeaderPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("csrc/nat_gen.h is stale: run go generate ./nat")
	}
}

// record returns the messages that fn queues or sends on a google/nftables
// connection whose netlink socket is a recorder (batch begin and end
// included); replies are the requests themselves, which fn ignores.
func record(t *testing.T, fn func(c *nftables.Conn)) []netlink.Message {
	t.Helper()
	var out []netlink.Message
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		out = append(out, req...)
		return nil, unix.ENOENT
	}))
	if err != nil {
		t.Fatal(err)
	}
	fn(c)
	return out
}

// flushed records the batch that fn queues.
func flushed(t *testing.T, fn func(c *nftables.Conn)) []netlink.Message {
	return record(t, func(c *nftables.Conn) {
		fn(c)
		_ = c.Flush() // the recorder answers nothing: only the batch counts
	})
}

// pubValues are the variable fields of a published port's rules.
type pubValues struct {
	bridge         string
	proto          string
	hostIP         netip.Addr
	hostPort, port uint16
	addr           netip.Addr
	pid            int
	start          uint64
	name           string
}

func (v pubValues) publish() *Publish {
	return &Publish{Bridge: v.bridge, Proto: v.proto, HostIP: v.hostIP, HostPort: v.hostPort, Addr: v.addr, Port: v.port,
		Owner: Owner{Pid: v.pid, Start: v.start, Name: v.name}}
}

// publishMsgs renders the NEWRULE messages of v's rules, the trailing
// NFTA_RULE_USERDATA attribute cut off (C appends the comment itself).
func publishMsgs(t *testing.T, v pubValues) []netlink.Message {
	p := v.publish()
	msgs := flushed(t, func(c *nftables.Conn) {
		for _, r := range publishRules(table(), p, publishComment(p)) {
			c.AddRule(r)
		}
	})
	msgs = msgs[1 : len(msgs)-1] // batch begin and end
	ud := attr(unix.NFTA_RULE_USERDATA, comment(publishComment(p)))
	for i := range msgs {
		if !bytes.HasSuffix(msgs[i].Data, ud) {
			t.Fatalf("rule %d does not end with its userdata", i)
		}
		msgs[i].Data = msgs[i].Data[:len(msgs[i].Data)-len(ud)]
	}
	return msgs
}

// attr is a netlink attribute as google/nftables marshals it (padded).
func attr(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// Fields that C patches into the templates (enum nsb_nft_field).
var cFields = []string{"BRIDGE", "ADDR", "PORT", "HOSTPORT", "HOSTIP", "PROTO", "PID", "START", "NAME"}

// patch is where a field's bytes go in a template.
type patch struct {
	off   int
	field string
}

// diffRuns returns the starts of the runs of bytes where a and b differ.
func diffRuns(t *testing.T, a, b []byte, width int) []int {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("templates of different lengths (%d, %d): a field changes the layout", len(a), len(b))
	}
	var starts []int
	for i := 0; i < len(a); i++ {
		if a[i] == b[i] {
			continue
		}
		j := i
		for j < len(a) && a[j] != b[j] {
			j++
		}
		if j-i > width {
			t.Fatalf("a run of %d differing bytes at %d, field width %d", j-i, i, width)
		}
		starts = append(starts, i)
		i = i + width - 1
	}
	return starts
}

// baseValues are the values the templates are rendered with.
func baseValues(hostIP bool) pubValues {
	v := pubValues{bridge: "aaaaaaaaaaaaaaa", proto: "tcp", hostPort: 0x1111, port: 0x2222,
		addr: netip.MustParseAddr("10.1.2.3"), pid: 1, start: 1, name: "x"}
	if hostIP {
		v.hostIP = netip.MustParseAddr("20.4.5.6")
	}
	return v
}

// ruleTemplate is one NEWRULE message with its patches.
type ruleTemplate struct {
	msg     netlink.Message
	patches []patch
}

// publishTemplates renders the rules of a published port (on every local
// address, or on hostIP) and finds where each field lands by changing it
// alone.
func publishTemplates(t *testing.T, hostIP bool) []ruleTemplate {
	base := baseValues(hostIP)
	msgs := publishMsgs(t, base)
	out := make([]ruleTemplate, len(msgs))
	for i := range msgs {
		out[i].msg = msgs[i]
	}
	type change struct {
		field string
		width int
		set   func(v *pubValues)
	}
	changes := []change{
		{"BRIDGE", 16, func(v *pubValues) { v.bridge = "bbbbbbbbbbbbbbb" }},
		{"ADDR", 4, func(v *pubValues) { v.addr = netip.MustParseAddr("11.9.8.7") }},
		{"PORT", 2, func(v *pubValues) { v.port = 0x3333 }},
		{"HOSTPORT", 2, func(v *pubValues) { v.hostPort = 0x4444 }},
		{"PROTO", 1, func(v *pubValues) { v.proto = "udp" }},
	}
	if hostIP {
		changes = append(changes, change{"HOSTIP", 4, func(v *pubValues) { v.hostIP = netip.MustParseAddr("30.7.8.9") }})
	}
	for _, ch := range changes {
		v := base
		ch.set(&v)
		other := publishMsgs(t, v)
		for i := range msgs {
			for _, off := range diffRuns(t, msgs[i].Data, other[i].Data, ch.width) {
				out[i].patches = append(out[i].patches, patch{off, ch.field})
			}
		}
	}
	return out
}

// fieldBytes renders a field as the rules carry it.
func fieldBytes(v pubValues, field string) []byte {
	switch field {
	case "BRIDGE":
		return ifname(v.bridge)
	case "ADDR":
		a := v.addr.As4()
		return a[:]
	case "HOSTIP":
		a := v.hostIP.As4()
		return a[:]
	case "PORT":
		return binary.BigEndian.AppendUint16(nil, v.port)
	case "HOSTPORT":
		return binary.BigEndian.AppendUint16(nil, v.hostPort)
	case "PROTO":
		if v.proto == "udp" {
			return []byte{unix.IPPROTO_UDP}
		}
		return []byte{unix.IPPROTO_TCP}
	}
	panic(field)
}

// The templates patched with random values are what google/nftables
// renders for them: the patches cover every field.
func TestCHeaderTemplatesComplete(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789-_."
	for _, hostIP := range []bool{false, true} {
		tm := publishTemplates(t, hostIP)
		for n := 0; n < 200; n++ {
			v := baseValues(hostIP)
			b := make([]byte, 1+rng.Intn(15))
			for i := range b {
				b[i] = letters[rng.Intn(len(letters))]
			}
			v.bridge = string(b)
			v.proto = []string{"tcp", "udp"}[rng.Intn(2)]
			v.addr = netip.AddrFrom4([4]byte{10, byte(rng.Intn(256)), byte(rng.Intn(256)), byte(1 + rng.Intn(254))})
			v.port, v.hostPort = uint16(1+rng.Intn(65535)), uint16(1+rng.Intn(65535))
			if hostIP {
				v.hostIP = netip.AddrFrom4([4]byte{192, 168, byte(rng.Intn(256)), byte(1 + rng.Intn(254))})
			}
			want := publishMsgs(t, v)
			for i := range tm {
				got := bytes.Clone(tm[i].msg.Data)
				for _, p := range tm[i].patches {
					copy(got[p.off:], fieldBytes(v, p.field))
				}
				if !bytes.Equal(got, want[i].Data) || tm[i].msg.Header.Type != want[i].Header.Type || tm[i].msg.Header.Flags != want[i].Header.Flags {
					t.Fatalf("rule %d of %+v: template gives\n%x\nGo renders\n%x", i, v, got, want[i].Data)
				}
			}
		}
	}
}

// commentParts splits a published port's comment into literal text and
// fields, in order, by rendering it with sentinel values.
func commentParts(t *testing.T, hostIP bool) [][2]string {
	sent := map[string]string{
		"BRIDGE": "QQbridgeQQ", "ADDR": "203.0.113.77", "HOSTIP": "198.51.100.99", "HOSTPORT": "61001", "PORT": "61002",
		"PROTO": "udp", "PID": "7777771", "START": "8888888881", "NAME": "QQnameQQ",
	}
	p := &Publish{Bridge: sent["BRIDGE"], Proto: sent["PROTO"], HostPort: 61001, Port: 61002,
		Addr: netip.MustParseAddr(sent["ADDR"]), Owner: Owner{Pid: 7777771, Start: 8888888881, Name: sent["NAME"]}}
	if hostIP {
		p.HostIP = netip.MustParseAddr(sent["HOSTIP"])
	} else {
		delete(sent, "HOSTIP")
	}
	c := publishComment(p)
	var parts [][2]string
	for len(c) > 0 {
		best, bestAt := "", len(c)
		for f, s := range sent {
			// The value follows "=": a sentinel is never a key.
			if i := strings.Index(c, "="+s); i >= 0 && i+1 < bestAt {
				best, bestAt = f, i+1
			}
		}
		if best == "" {
			parts = append(parts, [2]string{c, ""})
			break
		}
		parts = append(parts, [2]string{c[:bestAt], best})
		c = c[bestAt+len(sent[best]):]
		delete(sent, best)
	}
	if len(sent) != 0 {
		t.Fatalf("comment fields not found: %v", sent)
	}
	return parts
}

// cHeader renders csrc/nat_gen.h.
func cHeader(t *testing.T) []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	bytesLit := func(d []byte) string {
		var s strings.Builder
		for i, c := range d {
			if i%16 == 0 {
				s.WriteString("\n\t")
			} else {
				s.WriteString(" ")
			}
			fmt.Fprintf(&s, "0x%02x,", c)
		}
		return s.String()
	}
	var nmsg int
	msgVar := func(m netlink.Message) string {
		name := fmt.Sprintf("nsb_nft_m%d", nmsg)
		nmsg++
		p("static const unsigned char %s_data[%d] = {%s\n};\n", name, len(m.Data), bytesLit(m.Data))
		return fmt.Sprintf("{%#x, %#x, %d, %s_data}", uint16(m.Header.Type), uint16(m.Header.Flags), len(m.Data), name)
	}
	msgList := func(name string, msgs []netlink.Message) {
		var refs []string
		for _, m := range msgs {
			refs = append(refs, msgVar(m))
		}
		p("#define %s_N %d\n", strings.ToUpper(name), len(refs))
		p("static const struct nsb_nft_msg %s[%d] __attribute__((unused)) = {\n", name, len(refs))
		for _, r := range refs {
			p("\t%s,\n", r)
		}
		p("};\n")
	}

	p("/* Code generated by go generate ./nat (nat/cheader_test.go); DO NOT EDIT. */\n")
	p("/*\n * nat_gen.h: the nf_tables netlink messages of package nat's Publish and\n")
	p(" * Unpublish, as github.com/google/nftables renders them for nat's rules\n")
	p(" * (nat/rules.go), recorded from a fake netlink connection; the fields that\n")
	p(" * vary are patched in by csrc/nft_fast.c at the offsets given here.\n")
	p(" * TestCHeader fails when this file is stale; TestCHeaderTemplatesComplete\n")
	p(" * checks that the patches cover every field.\n */\n")
	p("#ifndef NSBOX_NAT_GEN_H\n#define NSBOX_NAT_GEN_H\n\n#include <stdint.h>\n\n")
	p("#define NSB_NFT_TABLE %q\n", TableName)
	p("#define NSB_NFT_LOCK_PATH %q\n", LockPath)
	p("#define NSB_NFT_FORWARDING_PATH %q\n", forwardingPath)
	p("#define NSB_NFT_FAMILY %d\n", nftables.TableFamilyIPv4)
	p("#define NSB_NFT_USERDATA_ATTR %d /* NFTA_RULE_USERDATA */\n", unix.NFTA_RULE_USERDATA)
	p("#define NSB_NFT_UD_COMMENT %d /* userdata.TypeComment */\n", 0)
	p("/* Comments: \"nsbox KIND k=v&...\"; the keys C reads. */\n")
	p("#define NSB_NFT_KIND_PUBLISH %q\n#define NSB_NFT_KIND_MASQ %q\n#define NSB_NFT_KIND_STATE %q\n",
		"nsbox "+kindPublish+" ", "nsbox "+kindMasq+" ", "nsbox "+kindState+" ")
	p("#define NSB_NFT_STATE_LOCALNET %q\n", "nsbox "+kindState+" localnet=")
	p("#define NSB_NFT_STATE_FORWARDING %q\n", string(bytes.TrimRight(stateRule(table()).UserData[2:], "\x00")))
	p("#define NSB_NFT_KEY_PID %q\n#define NSB_NFT_KEY_START %q\n#define NSB_NFT_KEY_PROTO %q\n#define NSB_NFT_KEY_HOSTPORT %q\n",
		"pid", "start", "proto", "hostport")
	p("\nstruct nsb_nft_msg {\n\tuint16_t type, flags, len;\n\tconst unsigned char *data;\n};\n")
	p("struct nsb_nft_patch {\n\tuint16_t off;\n\tuint8_t field; /* enum nsb_nft_field */\n};\n")
	p("struct nsb_nft_tmpl {\n\tstruct nsb_nft_msg msg;\n\tint npatch;\n\tconst struct nsb_nft_patch *patch;\n};\n")
	p("/* A comment: literal text, then a field's value (-1: none). */\n")
	p("struct nsb_nft_cpart {\n\tconst char *lit;\n\tint field;\n};\n")
	p("enum nsb_nft_field {")
	for i, f := range cFields {
		p(" NSB_NFT_F_%s = %d,", f, i)
	}
	p(" NSB_NFT_NFIELDS = %d };\n\n", len(cFields))

	// Batch begin and end.
	batch := flushed(t, func(c *nftables.Conn) { c.AddTable(table()) })
	p("/* The batch's begin and end (google/nftables' batch()). */\n")
	msgList("nsb_nft_batch_begin", batch[:1])
	msgList("nsb_nft_batch_end", batch[len(batch)-1:])

	// Reads: the table, the family's chains, each base chain's rules.
	p("\n/* Table.read: the table, the chains of the family, the rules of each base chain. */\n")
	msgList("nsb_nft_get_table", record(t, func(c *nftables.Conn) { _, _ = c.ListTableOfFamily(TableName, nftables.TableFamilyIPv4) }))
	msgList("nsb_nft_get_chains", record(t, func(c *nftables.Conn) { _, _ = c.ListChainsOfTableFamily(nftables.TableFamilyIPv4) }))
	var getRules []netlink.Message
	p("static const char *const nsb_nft_chains[] __attribute__((unused)) = {")
	for _, ch := range chains(table()) {
		p("%q, ", ch.Name)
		getRules = append(getRules, record(t, func(c *nftables.Conn) { _, _ = c.GetRules(table(), ch) })...)
	}
	p("};\n")
	msgList("nsb_nft_get_rules", getRules)

	// ensure, for a table that does not exist: the table, its chains, and
	// the state rule when forwarding was off.
	p("\n/* ensure for a new table: the table and its base chains, then the state rule\n * when it turned forwarding on. */\n")
	msgList("nsb_nft_add_table", flushed(t, func(c *nftables.Conn) {
		c.AddTable(table())
		for _, ch := range chains(table()) {
			c.AddChain(ch)
		}
	})[1:6])
	msgList("nsb_nft_state_rule", flushed(t, func(c *nftables.Conn) { c.AddRule(stateRule(table())) })[1:2])

	// The rules of a published port.
	for _, hostIP := range []bool{false, true} {
		name := "nsb_nft_publish_any"
		what := "every local address"
		if hostIP {
			name, what = "nsb_nft_publish_ip", "one host address (HOSTIP)"
		}
		tm := publishTemplates(t, hostIP)
		p("\n/* publishRules for %s, without their userdata. */\n", what)
		var refs []string
		for i, r := range tm {
			ref := msgVar(r.msg)
			pname := fmt.Sprintf("%s_p%d", name, i)
			p("static const struct nsb_nft_patch %s[%d] = {", pname, len(r.patches))
			for _, pt := range r.patches {
				p("{%d, NSB_NFT_F_%s}, ", pt.off, pt.field)
			}
			p("};\n")
			refs = append(refs, fmt.Sprintf("{%s, %d, %s}", ref, len(r.patches), pname))
		}
		p("static const struct nsb_nft_tmpl %s[%d] __attribute__((unused)) = {\n", name, len(refs))
		for _, r := range refs {
			p("\t%s,\n", r)
		}
		p("};\n")
		p("static const struct nsb_nft_cpart %s_comment[] __attribute__((unused)) = {\n", name)
		for _, part := range commentParts(t, hostIP) {
			f := "-1"
			if part[1] != "" {
				f = "NSB_NFT_F_" + part[1]
			}
			p("\t{%q, %s},\n", part[0], f)
		}
		p("\t{0, -1},\n};\n")
	}

	// Unpublish: a rule deleted by its handle, the table deleted.
	p("\n/* A rule of each base chain deleted by its handle (at NSB_NFT_HANDLE_OFF,\n * big endian), and the table's deletion. */\n")
	var dels []netlink.Message
	handleOff := -1
	for _, ch := range chains(table()) {
		del := func(h uint64) netlink.Message {
			return flushed(t, func(c *nftables.Conn) {
				if err := c.DelRule(&nftables.Rule{Table: table(), Chain: ch, Handle: h}); err != nil {
					t.Fatal(err)
				}
			})[1]
		}
		a, z := del(0x0102030405060708), del(0x1112131415161718)
		offs := diffRuns(t, a.Data, z.Data, 8)
		if len(offs) != 1 || (handleOff >= 0 && handleOff != offs[0]-len(a.Data)) {
			t.Fatalf("handle of a DELRULE of %s at %v", ch.Name, offs)
		}
		handleOff = offs[0] - len(a.Data) // from the end: the chain names differ in length
		dels = append(dels, a)
	}
	p("#define NSB_NFT_HANDLE_FROM_END %d\n", -handleOff)
	msgList("nsb_nft_del_rule", dels)
	msgList("nsb_nft_del_table", flushed(t, func(c *nftables.Conn) { c.DelTable(table()) })[1:2])

	// url.QueryEscape of each byte, for the values C writes in comments.
	p("\n/* url.QueryEscape of each byte (the comments' values). */\n")
	p("static const char *const nsb_nft_qescape[256] __attribute__((unused)) = {")
	for c := 0; c < 256; c++ {
		if c%8 == 0 {
			p("\n\t")
		}
		p("%q, ", url.QueryEscape(string([]byte{byte(c)})))
	}
	p("\n};\n\n#endif\n")
	return b.Bytes()
}
