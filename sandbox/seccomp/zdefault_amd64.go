package seccomp

// zdefault is the program generated for this architecture (zdefaultprog.go).
var zdefault = zdefaultAMD64
