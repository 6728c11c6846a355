// Package nsclone spawns a process in new Linux namespaces (IPC, PID, mount,
// network, UTS, user, cgroup) through a small C shim, csrc/clone_shim.c,
// without the Go runtime in the child.
//
// Go builds the whole spec first (argv, envp, the resolved path, hostname,
// ids, maps, fds of namespaces to join, mounts) in C memory. The shim clones
// the child with CLONE_VM on a stack alloca'd in its own frame, so the caller's
// page tables are never copied, and returns only once the child has exec'd or
// reported the stage and errno of the first failing setup step over a
// close-on-exec pipe. The child then: waits for the parent's go-ahead (user
// namespace maps, Spec.BeforeExec), joins the namespaces of Spec.Join, makes
// the mount tree private (or Spec.Propagation), mounts /proc, makes
// Spec.Mounts, sets the hostname, drops groups, gid and uid, changes
// directory, arranges its fds, resets handled signals and execs.
//
// With Spec.Init the child execs nsinit instead of the payload: a freestanding
// static program of about 8 KiB (csrc/nsinit.c, embedded here, written to a
// sealed memfd per spawn) that forks the payload, reaps orphans, forwards
// SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to it, and exits with
// its status (128+N when the payload died of signal N). It shares nothing with
// the caller. Where it cannot run (no blob for the architecture,
// vm.memfd_noexec=2) the init is cloned without CLONE_VM instead and pays one
// copy of the caller's page tables.
//
// # Privileges
//
// Creating namespaces other than a user namespace needs CAP_SYS_ADMIN. An
// ordinary user can create a user namespace (Spec.Namespaces includes User)
// and map itself to root in it with Spec.MapRoot; the other namespaces are then
// owned by it.
//
// # Errors
//
// Failures of the child's setup come back as *SetupError, naming the stage and
// wrapping the errno: "nsclone: child setup: mount /proc: operation not
// permitted", and errors.Is(err, unix.EPERM) holds.
//
// # Debugging
//
// strace -f -e trace=clone,clone3,setns,mount,execve shows the child's steps;
// every failing step is reported with its errno, so a silent failure means the
// payload itself failed. /proc/PID/status (NSpid) and /proc/PID/ns show where a
// process landed.
package nsclone
