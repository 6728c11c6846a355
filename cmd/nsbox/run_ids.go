package main

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/nsclone"
)

// parseID parses a numeric uid or gid. 4294967295 is (uid_t)-1, which the
// kernel reads as "no change", so it is refused with the overflows.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, errors.New("out of range (ids are 32-bit)")
		}
		return 0, errors.New("not a number or a name")
	}
	if n == 1<<32-1 {
		return 0, errors.New("out of range (4294967295 means no id)")
	}
	return uint32(n), nil
}

// isName reports whether s looks like a user or group name (not starting
// with a digit, no ':' or white space or NUL).
func isName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '+' || len(s) > 256 {
		return false
	}
	return !strings.ContainsAny(s, ": \t\n\x00/")
}

// etcFile opens /etc/NAME of the payload's view: the rootfs's own (resolved
// inside it, so a symlink there never reads the host's) with --rootfs, else
// the host's.
func etcFile(root, name string) (*os.File, string, error) {
	if root == "" {
		f, err := os.Open("/etc/" + name)
		return f, "/etc/" + name, err
	}
	shown := filepath.Join(root, "etc", name)
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, shown, err
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, "etc/"+name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return nil, shown, err
	}
	return os.NewFile(uintptr(fd), shown), shown, nil
}

// etcEntry is one line of an /etc/passwd or /etc/group style file.
type etcEntry struct {
	name string
	id   uint32
	gid  uint32   // passwd: the primary group
	home string   // passwd
	mem  []string // group: the members
}

// scanEtc calls match for each well-formed entry of /etc/NAME until it
// returns true, and returns that entry (nil if none did).
func scanEtc(root, name, flag string, match func(*etcEntry) bool) (*etcEntry, error) {
	f, shown, err := etcFile(root, name)
	if err != nil {
		return nil, usagef("run: %s: cannot read %s: %v", flag, shown, unwrapPathError(err))
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 4 {
			continue
		}
		id, err := parseID(fields[2])
		if err != nil {
			continue
		}
		e := &etcEntry{name: fields[0], id: id}
		if name == "passwd" {
			g, err := parseID(fields[3])
			if err != nil || len(fields) < 6 {
				continue
			}
			e.gid, e.home = g, fields[5]
		} else if fields[3] != "" {
			e.mem = strings.Split(fields[3], ",")
		}
		if match(e) {
			return e, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, usagef("run: %s: read %s: %v", flag, shown, err)
	}
	return nil, nil
}

// lookupID resolves a number or a name of /etc/passwd or /etc/group.
func lookupID(root, s, name, flag, kind string) (uint32, error) {
	if id, err := parseID(s); err == nil {
		return id, nil
	} else if !isName(s) {
		return 0, usagef("run: %s %q: %v", flag, s, err)
	}
	e, err := scanEtc(root, name, flag, func(e *etcEntry) bool { return e.name == s })
	if err != nil {
		return 0, err
	}
	if e == nil {
		return 0, usagef("run: %s %s: no such %s in /etc/%s", flag, s, kind, name)
	}
	return e.id, nil
}

// ids sets the payload's uid, gid, supplementary groups and HOME, USER and
// LOGNAME from --uid and --gid, as su or setpriv --init-groups --reset-env
// would: a user (named, or a number that /etc/passwd knows) brings its
// primary group unless --gid says otherwise, its groups from /etc/group
// (initgroups) and its environment; a number that /etc/passwd does not know
// needs --gid. --setenv, --unsetenv and --clearenv apply after.
func (o *runOptions) ids(s *nsclone.Spec) error {
	if o.gid != "" {
		id, err := lookupID(o.rootfs, o.gid, "group", "--gid", "group")
		if err != nil {
			return err
		}
		s.GID = &id
	}
	if o.uid == "" {
		return nil
	}
	var user *etcEntry
	var err error
	uid, perr := parseID(o.uid)
	if perr == nil {
		user, err = scanEtc(o.rootfs, "passwd", "--uid", func(e *etcEntry) bool { return e.id == uid })
		if err != nil {
			if s.GID != nil {
				err = nil // a bare uid with --gid needs no passwd
			} else {
				return err
			}
		}
	} else {
		if !isName(o.uid) {
			return usagef("run: --uid %q: %v", o.uid, perr)
		}
		user, err = scanEtc(o.rootfs, "passwd", "--uid", func(e *etcEntry) bool { return e.name == o.uid })
		if err != nil {
			return err
		}
		if user == nil {
			return usagef("run: --uid %s: no such user in /etc/passwd", o.uid)
		}
		uid = user.id
	}
	s.UID = &uid
	if user == nil {
		if s.GID == nil {
			return usagef("run: --uid %s: no user with that uid in /etc/passwd, so no group to take: give --gid too", o.uid)
		}
		return nil
	}
	if s.GID == nil {
		gid := user.gid
		s.GID = &gid
	}
	groups := []uint32{*s.GID} // initgroups(user, gid)
	if _, err := scanEtc(o.rootfs, "group", "--uid", func(e *etcEntry) bool {
		for _, m := range e.mem {
			if m == user.name && !slices.Contains(groups, e.id) {
				groups = append(groups, e.id)
			}
		}
		return false
	}); err != nil {
		return err
	}
	s.Groups = groups
	s.Env = setEnv(setEnv(setEnv(s.Env, "HOME", user.home), "USER", user.name), "LOGNAME", user.name)
	return nil
}
