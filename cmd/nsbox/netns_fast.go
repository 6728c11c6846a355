package main

// The C fast path of `nsbox netns add|del NAME` (csrc/netns_fast.c) runs
// from run_fast.c's ELF constructor before the Go runtime starts and leaves
// everything it does not take, and every failure, to runNetns. This file
// compiles the same source a second time (its functions are static; it has
// no constructor of its own) to expose its command-line check and its
// unshare-and-bind step to the tests.

/*
#cgo CFLAGS: -Wall -Wextra -Werror -O2 -I${SRCDIR}/../../csrc
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include "netns_fast.c"

// nsb_netns_bind_new_errno runs nsb_netns_bind_new and returns its result
// with errno, which cgo would otherwise read after more C calls.
static int nsb_netns_bind_new_errno(const char *path, int *err)
{
	int rc = nsb_netns_bind_new(path);
	*err = errno;
	return rc;
}
*/
import "C"

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// What the C fast path does with a command line (nsb_netns_parse).
const (
	netnsFastGo  = C.NSB_NETNS_GO  // left to Go
	netnsFastAdd = C.NSB_NETNS_ADD // netns add NAME in C
	netnsFastDel = C.NSB_NETNS_DEL // netns del|delete NAME in C
)

// netnsFastParse runs the C fast path's check over the arguments after the
// program name and says which of netnsFastGo, netnsFastAdd or netnsFastDel
// it would do.
func netnsFastParse(args []string) int {
	argv := append([]string{"nsbox"}, args...)
	cargv := make([]*C.char, len(argv)+1)
	for i, a := range argv {
		cargv[i] = C.CString(a)
	}
	defer func() {
		for _, p := range cargv {
			if p != nil {
				C.free(unsafe.Pointer(p))
			}
		}
	}()
	// The array of pointers lives in C memory, as in fastParse.
	pv := (**C.char)(C.malloc(C.size_t(len(cargv)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(pv))
	copy(unsafe.Slice(pv, len(cargv)), cargv)
	return int(C.nsb_netns_parse(C.int(len(argv)), pv))
}

// netnsFastBindNew runs the C fast path's unshare-and-bind step on the
// calling thread, which the caller must have locked: rc 0 leaves the thread
// in a new network namespace bound onto path; -1 (err says why) means it
// failed and went back to the original one; -2 means it could not go back.
func netnsFastBindNew(path string) (rc int, err error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr C.int
	rc = int(C.nsb_netns_bind_new_errno(cpath, &cerr))
	if rc != 0 {
		err = unix.Errno(cerr)
	}
	return rc, err
}
