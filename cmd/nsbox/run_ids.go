package main

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
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

// lookupID resolves a number or a name in an /etc/passwd or /etc/group
// style file (name:x:id:...), which nsbox reads itself (no NSS, no cgo).
func lookupID(s, file, flag, kind string) (uint32, error) {
	if id, err := parseID(s); err == nil {
		return id, nil
	} else if !isName(s) {
		return 0, usagef("run: %s %q: %v", flag, s, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, usagef("run: %s %s: cannot look up %s names: %v", flag, s, kind, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), ":", 4)
		if len(fields) < 3 || fields[0] != s {
			continue
		}
		id, err := parseID(fields[2])
		if err != nil {
			return 0, usagef("run: %s %s: bad id %q in %s: %v", flag, s, fields[2], file, err)
		}
		return id, nil
	}
	if err := sc.Err(); err != nil {
		return 0, usagef("run: %s %s: read %s: %v", flag, s, file, err)
	}
	return 0, usagef("run: %s %s: no such %s in %s", flag, s, kind, file)
}
