package rlimit

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Unlimited is RLIM_INFINITY.
const Unlimited = math.MaxUint64

// Limit is one resource limit.
type Limit struct {
	// Resource is an RLIMIT_* constant of golang.org/x/sys/unix.
	Resource int
	// Soft and Hard are the limits; Unlimited means none.
	Soft, Hard uint64
}

// resources maps the names to x/sys/unix's constants.
var resources = map[string]int{
	"as": unix.RLIMIT_AS, "core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
	"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
	"rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
}

// Names lists the resource names Parse accepts, sorted.
func Names() []string {
	out := make([]string, 0, len(resources))
	for n := range resources {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Name returns the name of resource r ("nofile"), or its number.
func Name(r int) string {
	for n, v := range resources {
		if v == r {
			return n
		}
	}
	return strconv.Itoa(r)
}

// Parse reads NAME=SOFT[:HARD]; without HARD the hard limit is SOFT. A
// soft limit above the hard one is an error.
func Parse(s string) (Limit, error) {
	name, val, ok := strings.Cut(s, "=")
	if !ok {
		return Limit{}, fmt.Errorf("rlimit: %q: want NAME=SOFT[:HARD]", s)
	}
	r, ok := resources[strings.ToLower(strings.TrimPrefix(strings.ToLower(name), "rlimit_"))]
	if !ok {
		return Limit{}, fmt.Errorf("rlimit: unknown resource %q (want one of %s)", name, strings.Join(Names(), ", "))
	}
	softS, hardS, hasHard := strings.Cut(val, ":")
	soft, err := parseValue(softS)
	if err != nil {
		return Limit{}, fmt.Errorf("rlimit: %s: %w", name, err)
	}
	hard := soft
	if hasHard {
		if hard, err = parseValue(hardS); err != nil {
			return Limit{}, fmt.Errorf("rlimit: %s: %w", name, err)
		}
	}
	if soft > hard {
		return Limit{}, fmt.Errorf("rlimit: %s: soft limit %s above hard limit %s", name, format(soft), format(hard))
	}
	return Limit{Resource: r, Soft: soft, Hard: hard}, nil
}

func parseValue(s string) (uint64, error) {
	if s == "unlimited" || s == "infinity" {
		return Unlimited, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q: want a non-negative number or unlimited", s)
	}
	return v, nil
}

func format(v uint64) string {
	if v == Unlimited {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// String is the NAME=SOFT:HARD form.
func (l Limit) String() string {
	return Name(l.Resource) + "=" + format(l.Soft) + ":" + format(l.Hard)
}

// Check fails when l's hard limit is above the caller's current hard limit
// for the same resource (raising it needs CAP_SYS_RESOURCE, which the check
// does not assume), naming both.
func Check(l Limit) error {
	var cur unix.Rlimit
	if err := unix.Getrlimit(l.Resource, &cur); err != nil {
		return fmt.Errorf("rlimit: getrlimit %s: %w", Name(l.Resource), err)
	}
	if l.Hard > cur.Max {
		return fmt.Errorf("rlimit: %s: hard limit %s is above the caller's hard limit %s", Name(l.Resource), format(l.Hard), format(cur.Max))
	}
	return nil
}
