//go:build static

package main

// The release build (make build, which sets -tags static) links nsbox
// statically: the dynamic loader's relocations and page faults cost about
// 1 ms per process on the VMs measured here (a third of /bin/true), and every
// nsbox command is one short process. A static binary also runs on any Linux
// without a matching glibc. The Makefile also sets -tags netgo,osusergo so
// that no glibc NSS code is linked in: nsbox resolves users from /etc/passwd
// itself and never looks up host names.
//
// Without the tag (go install, go build, a sanitizer build with
// -fsanitize=address, which cannot link statically) nsbox links dynamically
// and glibc does not warn about NSS in a static binary.

// #cgo LDFLAGS: -static
import "C"
