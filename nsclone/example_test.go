package nsclone_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"

	"github.com/nsbox/nsbox/nsclone"
	"github.com/nsbox/nsbox/sandbox/caps"
	"github.com/nsbox/nsbox/sandbox/cgroup"
	"github.com/nsbox/nsbox/sandbox/rlimit"
	"github.com/nsbox/nsbox/sandbox/seccomp"
)

// Run spawns a command in fresh namespaces, as `nsbox run` does: new IPC,
// PID and mount namespaces, a private /proc, the tiny init as PID 1, and
// the ids of nobody. It needs root (or a user namespace: MapRoot).
func ExampleRun() {
	nobody := uint32(65534)
	st, err := nsclone.Run(context.Background(), &nsclone.Spec{
		Path:       "/bin/sh",
		Args:       []string{"sh", "-c", "echo pid $$; id -u"},
		Namespaces: nsclone.IPC | nsclone.PID | nsclone.Mnt,
		MountProc:  true,
		Init:       true,
		UID:        &nobody,
		GID:        &nobody,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
	})
	if err != nil {
		fmt.Println("spawn failed:", err)
		return
	}
	fmt.Println("exit", st.Code())
}

// A Namespace is a bit set that prints like the CLI's flags.
func ExampleNamespace_String() {
	fmt.Println(nsclone.IPC | nsclone.PID | nsclone.Mnt)
	fmt.Println(nsclone.Namespace(0))
	// Output:
	// ipc|pid|mnt
	// none
}

// A sandbox's filesystem view, as bubblewrap would build it with
// --ro-bind /usr /usr --dev /dev --proc /proc --tmpfs /tmp: an empty
// folder becomes the payload's root, the host's programs are bound in
// read-only, /dev holds only the harmless devices and /tmp is private.
// LookPath finds a command where the payload will see it: here /bin/sh
// is found through the read-only bind of the caller's /usr (Debian's /bin
// is a link into /usr), under an empty root.
func ExampleSpec_LookPath() {
	root, err := os.MkdirTemp("", "root")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(root)
	s := &nsclone.Spec{
		Path:       "sh",
		Env:        []string{"PATH=/usr/bin"},
		Namespaces: nsclone.Mnt,
		Root:       root,
		FS:         []nsclone.FSMount{{Kind: nsclone.ROBind, Source: "/usr", Dest: "/usr"}},
	}
	p, err := s.LookPath()
	fmt.Println(p, err)
	// Output: /usr/bin/sh <nil>
}

func ExampleSpec_view() {
	root, err := os.MkdirTemp("", "rootfs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	spec := &nsclone.Spec{
		Path:       "/usr/bin/ls",
		Args:       []string{"ls", "/"},
		Namespaces: nsclone.IPC | nsclone.PID | nsclone.Mnt,
		MountProc:  true, // inside Root
		Init:       true,
		Root:       root,
		FS: []nsclone.FSMount{
			{Kind: nsclone.ROBind, Source: "/usr", Dest: "/usr"},
			{Kind: nsclone.ROBind, Source: "/lib", Dest: "/lib"},
			{Kind: nsclone.ROBind, Source: "/lib64", Dest: "/lib64"},
			{Kind: nsclone.Dev},
			{Kind: nsclone.Tmpfs, Dest: "/tmp", Size: 64 << 20},
		},
		Env:    []string{"PATH=/usr/bin"},
		Stdout: os.Stdout,
	}
	st, err := nsclone.Run(context.Background(), spec)
	if err != nil {
		log.Fatal(err) // e.g. nsclone: child setup: mount point ...: read-only file system
	}
	fmt.Println(st)
}

// A locked-down payload: every capability dropped but one, no_new_privs,
// nsbox's default seccomp profile, rlimits and a cgroup with memory and
// process limits (removed when Wait returns). It needs root.
func ExampleSpec_limits() {
	keep := caps.Set(0).With(capability.CAP_NET_BIND_SERVICE)
	nobody := uint32(65534)
	st, err := nsclone.Run(context.Background(), &nsclone.Spec{
		Path:         "/bin/sh",
		Args:         []string{"sh", "-c", "grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status"},
		Namespaces:   nsclone.IPC | nsclone.PID | nsclone.Mnt,
		MountProc:    true,
		UID:          &nobody,
		GID:          &nobody,
		Capabilities: &keep,
		NoNewPrivs:   true,
		Seccomp:      seccomp.Default(),
		Rlimits:      []rlimit.Limit{{Resource: unix.RLIMIT_NOFILE, Soft: 256, Hard: 256}},
		Cgroup:       &cgroup.Config{Limits: cgroup.Limits{Memory: 64 << 20, Pids: 100}},
		Stdout:       os.Stdout,
		Stderr:       os.Stderr,
	})
	if err != nil {
		fmt.Println("spawn failed:", err)
		return
	}
	if st.OOMKilled() {
		fmt.Println("out of memory")
	}
	fmt.Println("exit", st.Code())
}
