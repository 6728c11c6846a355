//go:build !amd64

package nsclone

// initSourceHash and initELF are empty where no prebuilt nsinit exists: the
// init is then cloned without CLONE_VM and runs on a copy of the caller.
const initSourceHash = ""

var initELF []byte
