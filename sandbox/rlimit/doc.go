// Package rlimit parses resource limits given as NAME=SOFT[:HARD] (the
// spelling of prlimit(1) and of podman's --ulimit) and checks them against
// the caller's own limits.
//
// Names are those of prlimit(1) and getrlimit(2) without RLIMIT_: as, core,
// cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss,
// rtprio, rttime, sigpending, stack. A value is a number or "unlimited".
// nsclone sets them in the spawned child before exec (prlimit64). Without
// CAP_SYS_RESOURCE no hard limit can be raised, so Check refuses a hard limit
// above the caller's and names both, instead of letting the child fail.
//
// Debugging: cat /proc/PID/limits.
package rlimit
