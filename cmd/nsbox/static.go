package main

// nsbox links statically: the dynamic loader's relocations and page faults
// cost about 1 ms per process on the VMs measured here (a third of
// /bin/true), and every nsbox command is one short process. A static binary
// also runs on any Linux without a matching glibc. Build with
// -tags netgo,osusergo (the Makefile sets GOFLAGS) so that no glibc NSS
// code is linked in: nsbox resolves users from /etc/passwd itself and never
// looks up host names.

// #cgo LDFLAGS: -static
import "C"
