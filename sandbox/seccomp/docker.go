package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/sandbox/caps"
)

// Env is what Docker's conditional rules are evaluated against.
type Env struct {
	// Caps are the capabilities the payload keeps: a rule that includes
	// a capability applies only when the payload has all it names, one
	// that excludes capabilities only when it has none of them. The zero
	// value (none) is the strictest reading.
	Caps caps.Set
	// Kernel is the kernel release for includes.minKernel; empty means
	// the running kernel's.
	Kernel string
}

// condition is Docker's includes or excludes of one rule.
type condition struct {
	Caps      []string `json:"caps"`
	Arches    []string `json:"arches"`
	MinKernel string   `json:"minKernel"`
}

// Parse reads a profile in the runtime-spec / Docker / podman JSON format
// for a payload that keeps no capability (ParseFor with Env{}).
func Parse(data []byte) (*specs.LinuxSeccomp, error) { return ParseFor(data, Env{}) }

// ParseFor reads a profile in the runtime-spec / Docker / podman JSON format.
// Unknown keys are errors (a misspelt key must not weaken a profile); the
// keys of Docker's and podman's own format are understood: "comment",
// "archMap" (turned into architectures), "defaultErrno" and "errno" (errno
// names, used where no errnoRet is given), and the conditions "includes"
// and "excludes" of a rule ("caps", "arches" with Go's names such as amd64,
// "minKernel"), which are evaluated against env as dockerd does: a rule whose
// conditions do not hold is left out.
func ParseFor(data []byte, env Env) (*specs.LinuxSeccomp, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("seccomp: profile: %w", err)
	}
	if dec.More() {
		return nil, errors.New("seccomp: profile: trailing data after the JSON object")
	}
	if doc == nil {
		return nil, errors.New("seccomp: profile: not a JSON object")
	}
	var arches []specs.Arch
	if am, ok := doc["archMap"]; ok {
		var list []struct {
			Architecture     specs.Arch   `json:"architecture"`
			SubArchitectures []specs.Arch `json:"subArchitectures"`
		}
		if err := reparse(am, &list); err != nil {
			return nil, fmt.Errorf("seccomp: profile: archMap: %w", err)
		}
		for _, a := range list {
			arches = append(arches, a.Architecture)
			arches = append(arches, a.SubArchitectures...)
		}
		delete(doc, "archMap")
	}
	if err := errnoByName(doc, "defaultErrno", "defaultErrnoRet"); err != nil {
		return nil, err
	}
	delete(doc, "comment")
	if raw, ok := doc["syscalls"].([]any); ok {
		kept := raw[:0]
		for i, e := range raw {
			rule, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("seccomp: profile: syscalls[%d] is not an object", i)
			}
			applies, err := env.applies(rule)
			if err != nil {
				return nil, fmt.Errorf("seccomp: profile: syscalls[%d]: %w", i, err)
			}
			if !applies {
				continue
			}
			if err := errnoByName(rule, "errno", "errnoRet"); err != nil {
				return nil, fmt.Errorf("seccomp: profile: syscalls[%d]: %w", i, err)
			}
			delete(rule, "comment")
			kept = append(kept, rule)
		}
		doc["syscalls"] = kept
	}
	clean, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("seccomp: profile: %w", err)
	}
	var p specs.LinuxSeccomp
	strict := json.NewDecoder(bytes.NewReader(clean))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&p); err != nil {
		return nil, fmt.Errorf("seccomp: profile: %w", err)
	}
	p.Architectures = append(p.Architectures, arches...)
	if p.DefaultAction == "" {
		return nil, errors.New("seccomp: profile: no defaultAction")
	}
	return &p, nil
}

func reparse(v any, dst any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// errnoByName turns obj[nameKey] (an errno name such as "ENOSYS") into
// obj[retKey] when that is not given, and removes nameKey.
func errnoByName(obj map[string]any, nameKey, retKey string) error {
	v, ok := obj[nameKey]
	if !ok {
		return nil
	}
	delete(obj, nameKey)
	name, ok := v.(string)
	if !ok {
		return fmt.Errorf("seccomp: profile: %s: want an errno name such as EPERM", nameKey)
	}
	e, ok := errnoValue(name)
	if !ok {
		return fmt.Errorf("seccomp: profile: %s %q: unknown errno name", nameKey, name)
	}
	if _, given := obj[retKey]; !given {
		obj[retKey] = json.Number(strconv.Itoa(int(e)))
	}
	return nil
}

func errnoValue(name string) (unix.Errno, bool) {
	for e := unix.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == name {
			return e, true
		}
	}
	return 0, false
}

// applies evaluates a rule's includes and excludes and removes them.
func (env Env) applies(rule map[string]any) (bool, error) {
	var inc, exc condition
	for _, c := range []struct {
		key string
		dst *condition
	}{{"includes", &inc}, {"excludes", &exc}} {
		v, ok := rule[c.key]
		if !ok {
			continue
		}
		delete(rule, c.key)
		if v == nil {
			continue
		}
		if err := reparse(v, c.dst); err != nil {
			return false, fmt.Errorf("%s: %w", c.key, err)
		}
	}
	for _, name := range inc.Caps {
		c, err := caps.Parse(name)
		if err != nil {
			return false, fmt.Errorf("includes: %w", err)
		}
		if !env.Caps.Has(c) {
			return false, nil
		}
	}
	if len(inc.Arches) > 0 && !contains(inc.Arches, runtime.GOARCH) {
		return false, nil
	}
	if inc.MinKernel != "" {
		ok, err := env.kernelAtLeast(inc.MinKernel)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, name := range exc.Caps {
		c, err := caps.Parse(name)
		if err != nil {
			return false, fmt.Errorf("excludes: %w", err)
		}
		if env.Caps.Has(c) {
			return false, nil
		}
	}
	if contains(exc.Arches, runtime.GOARCH) {
		return false, nil
	}
	if exc.MinKernel != "" {
		return false, errors.New("excludes: minKernel is not a condition Docker defines")
	}
	return true, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// kernelAtLeast compares the kernel release with min ("4.8").
func (env Env) kernelAtLeast(min string) (bool, error) {
	rel := env.Kernel
	if rel == "" {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return false, fmt.Errorf("uname: %w", err)
		}
		rel = unix.ByteSliceToString(u.Release[:])
	}
	have, err := majorMinor(rel)
	if err != nil {
		return false, fmt.Errorf("kernel release %q: %w", rel, err)
	}
	want, err := majorMinor(min)
	if err != nil {
		return false, fmt.Errorf("includes: minKernel %q: %w", min, err)
	}
	return have[0] > want[0] || (have[0] == want[0] && have[1] >= want[1]), nil
}

func majorMinor(s string) ([2]int, error) {
	var out [2]int
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return out, errors.New("want MAJOR.MINOR")
	}
	for i := 0; i < 2; i++ {
		digits := parts[i]
		if j := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			digits = digits[:j]
		}
		v, err := strconv.Atoi(digits)
		if err != nil {
			return out, errors.New("want MAJOR.MINOR")
		}
		out[i] = v
	}
	return out, nil
}
