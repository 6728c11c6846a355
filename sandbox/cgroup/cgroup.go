package cgroup

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The names nsbox gives and the files it writes; go generate ./cmd/nsbox
// renders them into csrc/nsbox_gen.h for the C fast path of run.
const (
	// DefaultParent is the default parent group's name (Config.Parent).
	DefaultParent = "nsbox"
	// NamePrefix starts the name of a group nsbox makes: then the pid and
	// 8 hex digits ("nsbox-1234-0a1b2c3d").
	NamePrefix = "nsbox-"
	// PidsMaxFile holds the pids controller's limit (v1 and v2).
	PidsMaxFile = "pids.max"
	// JoinFileV1 and JoinFileV2 are what JoinFiles returns in each.
	JoinFileV1, JoinFileV2 = "tasks", "cgroup.procs"
	// ProcsFile lists a group's processes; KillFileV2 kills them on v2.
	ProcsFile, KillFileV2 = "cgroup.procs", "cgroup.kill"
	// SubtreeControlFile enables controllers for a v2 group's children.
	SubtreeControlFile = "cgroup.subtree_control"
)

// Limits are the limits of one sandbox's group. A zero field sets no limit.
type Limits struct {
	// Memory is the memory limit in bytes (memory.max, or v1's
	// memory.limit_in_bytes); the kernel's OOM killer ends the sandbox
	// above it.
	Memory int64
	// MemorySwap is memory plus swap in bytes, as in Docker (v2's
	// memory.swap.max gets MemorySwap-Memory; v1's memory.memsw.limit_in_bytes);
	// -1 is unlimited swap. It needs Memory.
	MemorySwap int64
	// Pids is the most tasks (processes and threads) the group may hold;
	// fork and clone fail with EAGAIN above it.
	Pids int64
	// CPUs is a CPU quota in CPUs (1.5 is 150 ms of CPU time every 100 ms).
	CPUs float64
}

// Config says where a group goes and what it limits.
type Config struct {
	// Parent is the parent group: an absolute path inside each hierarchy,
	// such as "/nsbox" or "/system.slice"; it must exist. Empty means
	// "nsbox" below the caller's own group on v1 and "/nsbox" on v2, made
	// if missing and removed with the last group in it (Group.Parents).
	Parent string
	// Name is the group's name; empty means nsbox-PID-RANDOM.
	Name string
	// defaultParent replaces the default parent's name "nsbox" (tests use
	// their own, so that they can watch it come and go).
	defaultParent string
	// Freeze also places the group in v1's freezer hierarchy (where
	// mounted), so that removal can stop every task before killing them
	// and a fork bomb cannot outrun it. Joining a hierarchy costs a cgroup
	// migration (about 0.5 ms here), so nsclone asks for it only when the
	// sandbox has no PID namespace of its own: with one, the kernel kills
	// every task in it when its PID 1 ends. v2 kills with cgroup.kill
	// and ignores Freeze.
	Freeze bool
	Limits
}

// IsZero reports whether l sets no limit at all.
func (l Limits) IsZero() bool { return l == Limits{} }

// Validate checks the limits without touching the system.
func (l Limits) Validate() error {
	switch {
	case l.Memory < 0:
		return fmt.Errorf("cgroup: memory limit %d is negative", l.Memory)
	case l.MemorySwap < -1:
		return fmt.Errorf("cgroup: memory+swap limit %d is negative", l.MemorySwap)
	case l.MemorySwap != 0 && l.Memory == 0:
		return errors.New("cgroup: a memory+swap limit needs a memory limit")
	case l.MemorySwap > 0 && l.MemorySwap < l.Memory:
		return fmt.Errorf("cgroup: memory+swap limit %d is below the memory limit %d", l.MemorySwap, l.Memory)
	case l.Pids < 0:
		return fmt.Errorf("cgroup: pids limit %d is negative", l.Pids)
	case l.CPUs < 0 || math.IsNaN(l.CPUs) || math.IsInf(l.CPUs, 0):
		return fmt.Errorf("cgroup: cpus %v is not a positive number", l.CPUs)
	case l.CPUs > 0 && l.CPUs*100000 < 1000:
		return fmt.Errorf("cgroup: cpus %v is below the kernel's minimum quota (0.01)", l.CPUs)
	}
	return nil
}

// controllers returns the controllers l needs.
func (l Limits) controllers() []string {
	var c []string
	if l.Memory != 0 || l.MemorySwap != 0 {
		c = append(c, "memory")
	}
	if l.Pids != 0 {
		c = append(c, "pids")
	}
	if l.CPUs != 0 {
		c = append(c, "cpu")
	}
	return c
}

// ErrParent is wrapped by errors about Config.Parent (missing, not a
// directory, not writable).
var ErrParent = errors.New("bad parent group")

// mount is one cgroup hierarchy mounted on this machine.
type mount struct {
	dir, root   string
	v2          bool
	controllers []string // v1: from the super options; v2: cgroup.controllers
}

// mounts reads the cgroup hierarchies from /proc/self/mountinfo.
func mounts() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		fstype, opts := fields[sep+1], fields[sep+3]
		m := mount{dir: unescape(fields[4]), root: unescape(fields[3])}
		switch fstype {
		case "cgroup2":
			m.v2 = true
			b, err := os.ReadFile(filepath.Join(m.dir, "cgroup.controllers"))
			if err == nil {
				m.controllers = strings.Fields(string(b))
			}
		case "cgroup":
			for _, o := range strings.Split(opts, ",") {
				switch o {
				case "rw", "ro":
				default:
					if !strings.Contains(o, "=") {
						m.controllers = append(m.controllers, o)
					}
				}
			}
		default:
			continue
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func has(list []string, x string) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}

// ownPath is the caller's group in the v1 hierarchy of controller (or in
// v2 with controller ""), from /proc/self/cgroup.
func ownPath(controller string) (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if controller == "" && parts[0] == "0" && parts[1] == "" {
			return parts[2], nil
		}
		if controller != "" && has(strings.Split(parts[1], ","), controller) {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("cgroup: no %q line in /proc/self/cgroup", controller)
}

// Group is one sandbox's group, in one v2 directory or one directory per v1
// hierarchy.
type Group struct {
	// V2 is true on the unified hierarchy.
	V2 bool
	// Path is the group's path inside each hierarchy ("/nsbox/nsbox-12-ab").
	Path string
	// Dirs are the group's directories (deepest first is irrelevant: they
	// are siblings in different hierarchies), the memory one first when
	// there is one.
	Dirs []string
	// Parents are the default parent's directories (Config.Parent
	// empty) that nsbox made when missing: whoever removes the group
	// removes them too while no other group is left in them (rmdir
	// refuses a non-empty one, so concurrent sandboxes keep theirs). A
	// parent the caller named is never removed.
	Parents []string
	// KillFile is v2's cgroup.kill, FreezeFile v1's freezer.state ("" if
	// none).
	KillFile, FreezeFile string
	// Limits are what was written.
	Limits Limits

	memDir string
}

func randomName() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("cgroup: random name: %v", err))
	}
	return NamePrefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// Create makes the group of cfg and writes its limits. On failure nothing is
// left behind. It fails when no hierarchy offers a controller the limits
// need, naming it.
func Create(cfg Config) (*Group, error) {
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	if cfg.Parent != "" && (!filepath.IsAbs(cfg.Parent) || filepath.Clean(cfg.Parent) != cfg.Parent) {
		return nil, fmt.Errorf("cgroup: parent %q: want a clean absolute path inside the hierarchy, such as /nsbox", cfg.Parent)
	}
	name := cfg.Name
	if name == "" {
		name = randomName()
	}
	if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("cgroup: name %q is not a directory name", name)
	}
	ms, err := mounts()
	if err != nil {
		return nil, err
	}
	need := cfg.Limits.controllers()
	var v2 *mount
	for i := range ms {
		if ms[i].v2 {
			ok := true
			for _, c := range need {
				ok = ok && has(ms[i].controllers, c)
			}
			if ok {
				v2 = &ms[i]
				break
			}
		}
	}
	// The default parent can vanish between its mkdir and the group's: the
	// last group of a concurrent sandbox took it along. Making it again is
	// then the whole fix, so a few tries cover any interleaving.
	for try := 0; ; try++ {
		g := &Group{Limits: cfg.Limits}
		if v2 != nil {
			err = g.createV2(*v2, cfg, name, need)
		} else {
			err = g.createV1(ms, cfg, name, need)
		}
		if err == nil {
			return g, nil
		}
		g.Remove()
		if cfg.Parent != "" || !errors.Is(err, os.ErrNotExist) || try == 4 {
			return nil, err
		}
	}
}

// parentPath returns the parent group's path inside a hierarchy mounted at
// m, making the default one when missing.
func parentPath(m mount, cfg Config, controller string) (string, error) {
	if cfg.Parent != "" {
		dir := filepath.Join(m.dir, strings.TrimPrefix(cfg.Parent, m.root))
		st, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("cgroup: %w %s: %w", ErrParent, cfg.Parent, err)
		}
		if !st.IsDir() {
			return "", fmt.Errorf("cgroup: %w %s: not a directory", ErrParent, cfg.Parent)
		}
		if err := unix.Access(dir, unix.W_OK); err != nil {
			return "", fmt.Errorf("cgroup: %w %s: not writable: %w", ErrParent, cfg.Parent, err)
		}
		return cfg.Parent, nil
	}
	base := cfg.defaultParent
	if base == "" {
		base = DefaultParent
	}
	p := "/" + base
	if !m.v2 {
		own, err := ownPath(controller)
		if err != nil {
			return "", err
		}
		p = filepath.Join(own, base)
	}
	dir := filepath.Join(m.dir, strings.TrimPrefix(p, m.root))
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("cgroup: make parent %s: %w", dir, err)
	}
	return p, nil
}

func write(dir, file, v string) error {
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(v)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", v, p, err)
	}
	return nil
}

func (g *Group) createV2(m mount, cfg Config, name string, need []string) error {
	g.V2 = true
	parent, err := parentPath(m, cfg, "")
	if err != nil {
		return err
	}
	g.addParent(m, cfg, parent)
	// Enable the controllers on the way down from the mount's root.
	rel := strings.TrimPrefix(parent, m.root)
	dir := m.dir
	for _, part := range append([]string{""}, strings.Split(strings.Trim(rel, "/"), "/")...) {
		if part != "" {
			dir = filepath.Join(dir, part)
		}
		for _, c := range need {
			if err := write(dir, SubtreeControlFile, "+"+c); err != nil {
				return err
			}
		}
	}
	g.Path = filepath.Join(parent, name)
	d := filepath.Join(dir, name)
	if err := os.Mkdir(d, 0o755); err != nil {
		return fmt.Errorf("cgroup: make %s: %w", d, err)
	}
	g.Dirs = []string{d}
	g.KillFile = filepath.Join(d, KillFileV2)
	l := cfg.Limits
	if l.Memory > 0 {
		g.memDir = d
		if err := write(d, "memory.max", strconv.FormatInt(l.Memory, 10)); err != nil {
			return err
		}
		if l.MemorySwap != 0 {
			swap := "max"
			if l.MemorySwap > 0 {
				swap = strconv.FormatInt(l.MemorySwap-l.Memory, 10)
			}
			if err := write(d, "memory.swap.max", swap); err != nil {
				return err
			}
		}
	}
	if l.Pids > 0 {
		if err := write(d, PidsMaxFile, strconv.FormatInt(l.Pids, 10)); err != nil {
			return err
		}
	}
	if l.CPUs > 0 {
		if err := write(d, "cpu.max", strconv.FormatInt(int64(l.CPUs*100000), 10)+" 100000"); err != nil {
			return err
		}
	}
	return nil
}

func (g *Group) createV1(ms []mount, cfg Config, name string, need []string) error {
	find := func(c string) *mount {
		for i := range ms {
			if !ms[i].v2 && has(ms[i].controllers, c) {
				return &ms[i]
			}
		}
		return nil
	}
	dirs := map[string]string{}
	mk := func(c string) (string, error) {
		m := find(c)
		if m == nil {
			return "", fmt.Errorf("cgroup: no cgroup hierarchy offers the %s controller (neither v2 nor v1)", c)
		}
		if d, ok := dirs[m.dir]; ok {
			return d, nil
		}
		parent, err := parentPath(*m, cfg, c)
		if err != nil {
			return "", err
		}
		g.addParent(*m, cfg, parent)
		p := filepath.Join(parent, name)
		if g.Path == "" {
			g.Path = p
		}
		d := filepath.Join(m.dir, strings.TrimPrefix(p, m.root))
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", fmt.Errorf("cgroup: make %s: %w", d, err)
		}
		dirs[m.dir] = d
		g.Dirs = append(g.Dirs, d)
		return d, nil
	}
	l := cfg.Limits
	for _, c := range need {
		d, err := mk(c)
		if err != nil {
			return err
		}
		switch c {
		case "memory":
			g.memDir = d
			if err := write(d, "memory.limit_in_bytes", strconv.FormatInt(l.Memory, 10)); err != nil {
				return err
			}
			if l.MemorySwap != 0 {
				if err := write(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(l.MemorySwap, 10)); err != nil {
					return fmt.Errorf("%w (swap accounting off? boot with swapaccount=1)", err)
				}
			}
		case "pids":
			if err := write(d, PidsMaxFile, strconv.FormatInt(l.Pids, 10)); err != nil {
				return err
			}
		case "cpu":
			if err := write(d, "cpu.cfs_period_us", "100000"); err != nil {
				return err
			}
			if err := write(d, "cpu.cfs_quota_us", strconv.FormatInt(int64(l.CPUs*100000), 10)); err != nil {
				return err
			}
		}
	}
	// The freezer, where mounted, lets the cleanup stop every task
	// before killing them.
	if cfg.Freeze && find("freezer") != nil && len(need) > 0 {
		d, err := mk("freezer")
		if err != nil {
			return err
		}
		g.FreezeFile = filepath.Join(d, "freezer.state")
	}
	return nil
}

// ProcsFiles are the cgroup.procs files of the group's directories.
func (g *Group) ProcsFiles() []string {
	out := make([]string, len(g.Dirs))
	for i, d := range g.Dirs {
		out[i] = filepath.Join(d, ProcsFile)
	}
	return out
}

// JoinFiles are the files a single-threaded process writes "0" to in order to
// move itself into the group: v1's tasks, v2's cgroup.procs. On v1 a write
// to cgroup.procs takes the kernel's global cgroup_threadgroup_rwsem for
// writing, which waits for an RCU grace period (about 10 ms on the test VM
// when no migration happened just before); moving the writing thread itself
// through tasks skips that lock (kernel 6.0 and later), and for a process of
// one thread it moves the whole process.
func (g *Group) JoinFiles() []string {
	name := JoinFileV1
	if g.V2 {
		name = JoinFileV2
	}
	out := make([]string, len(g.Dirs))
	for i, d := range g.Dirs {
		out[i] = filepath.Join(d, name)
	}
	return out
}

// OOMKills is how many tasks the kernel's OOM killer ended in the group
// (memory.events or memory.oom_control, "oom_kill N"); 0 without a memory
// limit.
func (g *Group) OOMKills() (uint64, error) {
	if g.memDir == "" {
		return 0, nil
	}
	file := "memory.oom_control"
	if g.V2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(g.memDir, file))
	if err != nil {
		return 0, fmt.Errorf("cgroup: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, nil
}

// Usage reads the group's current memory use in bytes and task count (-1
// where the group has no such controller).
func (g *Group) Usage() (memory, pids int64) {
	memory, pids = -1, -1
	for _, d := range g.Dirs {
		for _, f := range []struct {
			name string
			dst  *int64
		}{{"memory.current", &memory}, {"memory.usage_in_bytes", &memory}, {"pids.current", &pids}} {
			if b, err := os.ReadFile(filepath.Join(d, f.name)); err == nil {
				if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
					*f.dst = v
				}
			}
		}
	}
	return memory, pids
}

// addParent records the directory of the default parent in m (nothing for
// a parent the caller named).
func (g *Group) addParent(m mount, cfg Config, parent string) {
	if cfg.Parent == "" {
		g.Parents = append(g.Parents, filepath.Join(m.dir, strings.TrimPrefix(parent, m.root)))
	}
}

// Remove removes the group's directories; they must hold no process (the
// watcher of nsclone kills them first). Missing directories are fine. Then
// it removes the default parents that no other group uses any more.
func (g *Group) Remove() error {
	var errs []error
	for _, d := range g.Dirs {
		if err := unix.Rmdir(d); err != nil && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("cgroup: remove %s: %w", d, err))
		}
	}
	for _, d := range g.Parents {
		// EBUSY: another sandbox's group is still in it; it goes with
		// the last one.
		_ = unix.Rmdir(d)
	}
	return errors.Join(errs...)
}

// ParseBytes reads a size: a number of bytes with an optional suffix k, m, g
// or t (binary: k is 1024), in either case, with an optional trailing b
// ("64m", "64MiB" is not accepted; "64mb" is). -1 is returned as -1 only
// when allowNegOne is set (Docker's "unlimited" for --memory-swap).
func ParseBytes(s string, allowNegOne bool) (int64, error) {
	if allowNegOne && s == "-1" {
		return -1, nil
	}
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v <= 0 || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: want a positive number of bytes with an optional k, m, g or t suffix", s)
	}
	return v * mult, nil
}

// FormatBytes writes n as the OOM message does: "64 MiB", "1.5 GiB", "4096 bytes".
func FormatBytes(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift {
			v := float64(n) / float64(int64(1)<<u.shift)
			return strconv.FormatFloat(v, 'f', -1, 64) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
