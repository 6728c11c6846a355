//go:build !cgo

package nsclone

// nsclone is cgo: its child runs C (csrc/clone_shim.c) without the Go
// runtime. Built with CGO_ENABLED=0, or without a C compiler (go then turns
// cgo off by itself), the build stops on the sentence below instead of on
// the names that only the cgo files define.
var _ int = "nsbox needs cgo: CGO_ENABLED=1 and gcc (see README)"

// maxJoin stands in for the cgo constant so that the sentence above is the
// only error.
const maxJoin = 0
