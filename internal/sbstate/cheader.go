package sbstate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/nsbox/nsbox/internal/names"
)

// CSection renders what the C fast path of nsbox run (csrc/state_fast.c)
// must know to keep records as this package does, for csrc/nsbox_gen.h:
// the folder and its file names, the name rule (from ValidateName), the
// fields of Record in encoding/json's order with their keys as they appear
// in a record and whether they are omitempty (from the struct's tags), the
// namespace kinds in the order json writes a map's keys, and how
// encoding/json escapes each ASCII byte in a string. The C writes a record
// by walking these tables, so a field added to Record changes the C (its
// switch over enum nsb_rec_field no longer compiles until the field is
// handled) instead of leaving it silently behind.
func CSection() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("/* Records of named sandboxes (internal/sbstate): the folder, its files,\n")
	p(" * the name rule (ValidateName, as internal/names' C table). */\n")
	p("#define NSB_STATE_DIR %q\n", DefaultDir)
	p("#define NSB_STATE_DIR_MODE %#o\n#define NSB_REC_MODE %#o\n", DirMode, RecordMode)
	p("#define NSB_REC_SUFFIX %q\n#define NSB_REC_TMP_PREFIX %q\n#define NSB_REC_TMP_SUFFIX %q\n", RecordSuffix, TmpPrefix, TmpSuffix)
	p("#define NSB_SBX_NAME_MAX %d\n", MaxName)
	p("%s", names.Probe(MaxName, func(s string) bool { return ValidateName(s) == nil }).C("nsb_rule_sandbox"))

	fields := RecordFields()
	p("/* Record's fields in encoding/json's order: the key as written (quoted,\n")
	p(" * with its colon) and whether an empty value leaves the field out. */\n")
	p("enum nsb_rec_field {\n")
	for i, f := range fields {
		p("\tNSB_REC_%s = %d,\n", strings.ToUpper(f.Key), i)
	}
	p("\tNSB_REC_NFIELDS = %d\n};\n", len(fields))
	p("struct nsb_rec_key {\n\tconst char *key;\n\tunsigned char omitempty;\n};\n")
	p("static const struct nsb_rec_key nsb_rec_keys[NSB_REC_NFIELDS] __attribute__((unused)) = {\n")
	for _, f := range fields {
		k, _ := json.Marshal(f.Key)
		omit := 0
		if f.OmitEmpty {
			omit = 1
		}
		p("\t{%q, %d},\n", string(k)+":", omit)
	}
	p("};\n")
	kinds := RecordKinds()
	p("/* The namespace kinds of Record.Namespaces, in the order of its keys. */\n")
	p("#define NSB_REC_NNS %d\n", len(kinds))
	p("static const char *const nsb_rec_ns[NSB_REC_NNS] __attribute__((unused)) = {")
	for i, k := range kinds {
		if i > 0 {
			p(", ")
		}
		p("%q", k)
	}
	p("};\n")
	p("/* encoding/json's spelling of each ASCII byte inside a string. */\n")
	p("static const char *const nsb_json_esc[128] __attribute__((unused)) = {")
	for c := 0; c < 128; c++ {
		if c%8 == 0 {
			p("\n\t")
		}
		e, _ := json.Marshal(string(rune(c)))
		p("%q,", string(e[1:len(e)-1]))
	}
	p("\n};\n")
	return b.Bytes()
}

// RecordKinds lists NamespaceKinds in the order a record's Namespaces are
// written (encoding/json sorts a map's keys): the C's nsb_rec_ns, whose
// indexes the status line's table (cmd/nsbox's generator) refers to.
func RecordKinds() []string {
	kinds := append([]string(nil), NamespaceKinds...)
	sort.Strings(kinds)
	return kinds
}

// RecordField is a field of Record as encoding/json writes it.
type RecordField struct {
	Key       string
	OmitEmpty bool
}

// RecordFields lists Record's fields in the order encoding/json writes
// them, from the struct's tags.
func RecordFields() []RecordField {
	var out []RecordField
	t := reflect.TypeOf(Record{})
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := strings.Contains(","+opts+",", ",omitempty,")
		if omit && f.Type.Kind() == reflect.Struct {
			// A struct is never "empty" for encoding/json; the C's
			// rule (an empty rendering leaves the field out) would
			// differ.
			panic("sbstate: omitempty struct field " + f.Name)
		}
		out = append(out, RecordField{Key: name, OmitEmpty: omit})
	}
	return out
}
