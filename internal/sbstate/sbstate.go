// Package sbstate keeps the records of named sandboxes in a state folder
// (/run/nsbox/sandboxes/NAME.json): written atomically when a sandbox
// starts, removed when it ends. A record whose process is gone, or whose
// pid now belongs to another process (a different start time), is stale:
// readers ignore it and remove it. Writers hold an flock on the folder while
// they check a name and add its record, so one name runs at most once.
package sbstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nsbox/nsbox/internal/flock"
	"golang.org/x/sys/unix"
)

// DefaultDir is where nsbox keeps its records.
const DefaultDir = "/run/nsbox/sandboxes"

// MaxName is the longest name, in bytes.
const MaxName = 64

// The files of a state folder: NAME + RecordSuffix is a record, written as
// TmpPrefix + NAME + "." + PID + TmpSuffix first (PID: the writer's) and
// renamed over it; the folder is made DirMode, a record RecordMode.
const (
	RecordSuffix = ".json"
	TmpPrefix    = "."
	TmpSuffix    = ".tmp"
	DirMode      = 0o755
	RecordMode   = 0o644
)

// Record is the state of one running named sandbox.
type Record struct {
	Name string `json:"name"`
	// Pid is the payload's pid as the host sees it; InitPid the process
	// nsbox spawned (nsbox-init, or the payload itself), which signals go to.
	Pid     int `json:"pid"`
	InitPid int `json:"init_pid"`
	// Started is when the sandbox started; StartTicks the start time of
	// InitPid in clock ticks after boot (/proc/PID/stat field 22), which
	// tells a recycled pid from the sandbox's own.
	Started    time.Time `json:"started"`
	StartTicks uint64    `json:"start_ticks"`
	// Namespaces maps each kind (ipc, mnt, net, pid, uts, user, cgroup)
	// to the inode of the sandbox's namespace, as readlink /proc/PID/ns/KIND shows.
	Namespaces map[string]uint64 `json:"namespaces"`
	// Bridge, Interface and Addresses are the network attachment of --bridge.
	Bridge    string   `json:"bridge,omitempty"`
	Interface string   `json:"interface,omitempty"`
	Addresses []string `json:"addresses"`
	Command   []string `json:"command"`
	// NsboxPid is the nsbox run that owns the record.
	NsboxPid int `json:"nsbox_pid"`
	// Limits are the cgroup limits of --memory, --memory-swap, --pids and
	// --cpus (nil without them); Cgroup the group's directories, where
	// nsbox ps reads the current use.
	Limits *Limits  `json:"limits,omitempty"`
	Cgroup []string `json:"cgroup,omitempty"`
}

// Limits are a sandbox's cgroup limits; zero is none.
type Limits struct {
	Memory     int64   `json:"memory,omitempty"`
	MemorySwap int64   `json:"memory_swap,omitempty"`
	Pids       int64   `json:"pids,omitempty"`
	CPUs       float64 `json:"cpus,omitempty"`
}

// NamespaceKinds are the kinds a record lists, in /proc/PID/ns's words.
var NamespaceKinds = []string{"cgroup", "ipc", "mnt", "net", "pid", "user", "uts"}

// ValidateName checks a sandbox name: 1 to 64 bytes of letters, digits,
// '.', '_' and '-', not starting with '-' or '.'.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxName {
		return fmt.Errorf("sandbox name %q: want 1 to %d bytes", name, MaxName)
	}
	if name[0] == '-' || name[0] == '.' {
		return fmt.Errorf("sandbox name %q: must not start with '-' or '.'", name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("sandbox name %q: only letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

// ErrRunning is wrapped when a name is already taken by a live sandbox.
var ErrRunning = errors.New("already running")

// ErrNotFound is wrapped when no live sandbox has the name.
var ErrNotFound = errors.New("no such sandbox")

// Store is a state folder.
type Store struct{ Dir string }

// lock takes the folder's flock (creating the folder), for a check-and-add.
func (s Store) lock() (int, error) {
	if err := os.MkdirAll(s.Dir, DirMode); err != nil {
		return -1, fmt.Errorf("sbstate: create %s: %w", s.Dir, err)
	}
	fd, err := unix.Open(s.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("sbstate: open %s: %w", s.Dir, err)
	}
	if err := flock.Exclusive(fd); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("sbstate: lock %s: %w", s.Dir, err)
	}
	return fd, nil
}

func (s Store) path(name string) string { return filepath.Join(s.Dir, name+RecordSuffix) }

// Reserve checks that no live sandbox is called name, removing a stale
// record, and returns with the folder locked: the caller starts the sandbox
// and calls Add (or Release) on the returned lock.
func (s Store) Reserve(name string) (*Lock, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	fd, err := s.lock()
	if err != nil {
		return nil, err
	}
	if r, err := s.read(name); err == nil {
		if r.Live() {
			unix.Close(fd)
			return nil, fmt.Errorf("sandbox %s: %w as pid %d", name, ErrRunning, r.Pid)
		}
		os.Remove(s.path(name))
	}
	return &Lock{s: s, fd: fd}, nil
}

// Lock is a held reservation of the state folder.
type Lock struct {
	s  Store
	fd int
}

// Add writes r atomically (a temporary file renamed over NAME.json) and
// releases the lock.
func (l *Lock) Add(r *Record) error {
	defer l.Release()
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("sbstate: encode %s: %w", r.Name, err)
	}
	tmp := filepath.Join(l.s.Dir, TmpPrefix+r.Name+"."+strconv.Itoa(os.Getpid())+TmpSuffix)
	if err := os.WriteFile(tmp, append(b, '\n'), RecordMode); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sbstate: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, l.s.path(r.Name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sbstate: record %s: %w", r.Name, err)
	}
	return nil
}

// Release gives the lock up; it is safe to call twice.
func (l *Lock) Release() {
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}

// Remove deletes the record of name if it is still the one r describes (a
// later sandbox may have taken the name after this one was found stale).
func (s Store) Remove(r *Record) error {
	fd, err := s.lock()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	cur, err := s.read(r.Name)
	if err != nil || cur.InitPid != r.InitPid || cur.StartTicks != r.StartTicks {
		return nil
	}
	if err := os.Remove(s.path(r.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sbstate: remove %s: %w", r.Name, err)
	}
	return nil
}

func (s Store) read(name string) (*Record, error) {
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("sbstate: decode %s: %w", s.path(name), err)
	}
	return &r, nil
}

// Get returns the live record of name; a stale one is removed and reported
// as ErrNotFound.
func (s Store) Get(name string) (*Record, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	r, err := s.read(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sandbox %s: %w", name, ErrNotFound)
		}
		return nil, err
	}
	if !r.Live() {
		s.Remove(r)
		return nil, fmt.Errorf("sandbox %s: %w (it has ended)", name, ErrNotFound)
	}
	return r, nil
}

// List returns the live records sorted by name, removing stale ones.
func (s Store) List() ([]*Record, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sbstate: list %s: %w", s.Dir, err)
	}
	var out []*Record
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), RecordSuffix)
		if !ok || ValidateName(name) != nil {
			continue
		}
		r, err := s.read(name)
		if err != nil {
			continue // removed meanwhile, or not ours
		}
		if !r.Live() {
			s.Remove(r)
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Live reports whether r's sandbox still runs: its init (or payload) pid
// exists, is not a zombie, and started at the recorded time.
func (r *Record) Live() bool {
	pid := r.InitPid
	if pid == 0 {
		pid = r.Pid
	}
	t, state, err := StartTicks(pid)
	return err == nil && t == r.StartTicks && state != 'Z' && state != 'X'
}

// StartTicks returns the start time of pid in clock ticks after boot and
// its state letter, from /proc/PID/stat.
func StartTicks(pid int) (uint64, byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("sbstate: /proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After the command: state is field 3, starttime field 22.
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("sbstate: /proc/%d/stat: %d fields", pid, len(f))
	}
	t, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("sbstate: /proc/%d/stat: start time %q: %w", pid, f[19], err)
	}
	return t, f[0][0], nil
}

// Namespaces returns the namespace inodes of pid by kind.
func Namespaces(pid int) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, k := range NamespaceKinds {
		var st unix.Stat_t
		p := "/proc/" + strconv.Itoa(pid) + "/ns/" + k
		if err := unix.Stat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // a kernel without that kind
			}
			return nil, fmt.Errorf("sbstate: stat %s: %w", p, err)
		}
		out[k] = st.Ino
	}
	return out, nil
}
