package nsclone

/*
#include <stdint.h>
*/
import "C"

import "runtime/cgo"

// nscloneGoHook is the nsc_hook of the C shim: it runs in the parent, on the
// thread inside nsc_spawn (whose frame holds the waiting child's stack),
// writes the user namespace maps and runs Spec.BeforeExec. Non-zero makes
// the shim kill the child.
//
//export nscloneGoHook
func nscloneGoHook(ctx C.uintptr_t, pid C.int) C.int {
	b := cgo.Handle(ctx).Value().(*build)
	if err := b.hook(int(pid)); err != nil {
		b.hookErr = err
		return 1
	}
	return 0
}
