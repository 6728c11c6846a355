// Package cgroup gives a sandbox a control group of its own with memory,
// swap, process-count and CPU limits, on cgroup v2 or v1, whichever the
// machine mounts (read from /proc/self/mountinfo at run time; v2 wins when
// its hierarchy has every controller the limits need).
//
// It works on the cgroup files directly (mkdir, a few writes, rmdir): that is
// smaller than github.com/containerd/cgroups/v3 and keeps the spawn path free
// of its dependencies and of systemd. Placement and removal belong to nsclone:
// the spawned child writes "0" to each group's join file (Group.JoinFiles: v1's
// tasks, v2's cgroup.procs) as its first step,
// and a watcher process removes the groups (killing what is left: cgroup.kill
// on v2, freeze-and-kill on v1 when the sandbox has no PID namespace, else a kill loop after the kernel has ended the namespace) once the caller is done or dead.
//
// Where groups go: under Config.Parent, an absolute path inside each
// hierarchy that must exist and be writable; by default a group "nsbox"
// (created on first use, and removed with the last sandbox group in it, by
// Group.Remove or the watcher) below the caller's own cgroup on v1, and below
// the root on v2 (v2 forbids controllers in a group that holds processes).
// Each sandbox's group is named nsbox-PID-RANDOM.
//
// Privileges: creating groups needs write access to the parent (root, or a
// delegated subtree). Debugging: cat /proc/PID/cgroup, then the group's
// memory.max or memory.limit_in_bytes, pids.max, cpu.max or
// cpu.cfs_quota_us, memory.events or memory.oom_control.
package cgroup
