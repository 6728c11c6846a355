package nsclone

/*
#include <stdint.h>
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
)

// nscloneGoHook is the nsc_hook of the C shim: it runs in the parent, on the
// thread inside nsc_spawn (whose frame holds the waiting child's stack),
// writes the user namespace maps and runs Spec.BeforeExec. Non-zero makes
// the shim kill the child.
//
//export nscloneGoHook
func nscloneGoHook(ctx C.uintptr_t, pid C.int) (ret C.int) {
	b := cgo.Handle(ctx).Value().(*build)
	// A panic must not unwind through the C frames: it becomes an error.
	defer func() {
		if r := recover(); r != nil {
			b.hookErr = &SetupError{Stage: StageBeforeExec, Err: fmt.Errorf("panic: %v", r)}
			ret = 1
		}
	}()
	if err := b.hook(int(pid)); err != nil {
		b.hookErr = err
		return 1
	}
	return 0
}
