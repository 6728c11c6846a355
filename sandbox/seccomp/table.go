package seccomp

import "sort"

//go:generate go test -run TestSyscallTableUpToDate|TestOtherArchNamesUpToDate . -update

// sysent is one system call of the running architecture's table
// (zsyscalls_GOARCH.go, generated from github.com/elastic/go-seccomp-bpf's
// tables, themselves generated from the kernel's). The table is static data:
// looking a name up costs no start-up time, where importing that module's
// maps costs 0.4 ms at every start of nsbox.
type sysent struct {
	name string
	nr   uint32
}

// lookupSyscall returns the number of the system call name.
func lookupSyscall(name string) (uint32, bool) {
	i := sort.Search(len(syscallTable), func(i int) bool { return syscallTable[i].name >= name })
	if i < len(syscallTable) && syscallTable[i].name == name {
		return syscallTable[i].nr, true
	}
	return 0, false
}

// otherArch reports whether name is a system call of some architecture
// (libseccomp's list) though not of this one.
func otherArch(name string) bool {
	i := sort.SearchStrings(allNames[:], name)
	return i < len(allNames) && allNames[i] == name
}
