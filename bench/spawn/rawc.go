package spawn

// rawC runs the raw C loop of csrc/bench_clone.c (the walkthrough's clone
// made safe) inside this process, so that its clone copies this process's
// page tables as the walkthrough's would.

/*
#cgo CFLAGS: -Wall -Wextra -Werror -O2 -I${SRCDIR}/../../csrc
#define BENCH_CLONE_NO_MAIN
#include "bench_clone.c"
*/
import "C"

import (
	"errors"
	"runtime"
	"time"
)

// rawCLoop runs n spawns of the raw C loop and returns their total time.
func rawCLoop(n int) (time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ns := C.bench_clone_loop(C.long(n))
	if ns < 0 {
		return 0, errors.New("bench_clone_loop: a spawn failed")
	}
	return time.Duration(ns), nil
}
