package nsclone_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nsbox/nsbox/nsclone"
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
