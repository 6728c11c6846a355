package seccomp

import "unsafe"

// littleEndian tells where the halves of a 64-bit argument lie in
// seccomp_data (the native byte order).
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
