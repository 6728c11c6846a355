package spawn

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"testing"

	"github.com/nsbox/nsbox/bench/internal/nsboxbin"
	"github.com/nsbox/nsbox/internal/testutil"
	"github.com/nsbox/nsbox/nsclone"
)

// bin is the nsbox binary the benchmarks time.
var bin nsboxbin.Binary

func TestMain(m *testing.M) { os.Exit(bin.Run(m)) }

// heapSize is the touched heap of the "big heap" cases.
func heapSize() int {
	if os.Getenv("NSBOX_BENCH_FULL") == "1" {
		return 2 << 30
	}
	return 64 << 20
}

// touchHeap allocates n bytes and writes every page, so that the page
// tables hold them.
func touchHeap(n int) []byte {
	h := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		h[i] = 1
	}
	return h
}

var spawnSpec = nsclone.Spec{
	Path: "/bin/true", Args: []string{"true"}, Env: []string{},
	Namespaces: nsclone.IPC | nsclone.PID | nsclone.Mnt, MountProc: true,
}

// BenchmarkSpawn: one spawn of /bin/true in new IPC, PID and mount namespaces
// with /proc mounted, waited for, per iteration; with no extra heap and with
// a big touched heap in the caller.
func BenchmarkSpawn(b *testing.B) {
	testutil.RequirePriv(b)
	for _, heap := range []int{0, heapSize()} {
		var h []byte
		if heap > 0 {
			h = touchHeap(heap)
		}
		name := "heap=" + strconv.Itoa(heap>>20) + "MiB"
		b.Run(name+"/nsclone", func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				st, err := nsclone.Run(ctx, &spawnSpec)
				if err != nil || st.Code() != 0 {
					b.Fatalf("nsclone.Run: %v %v", st, err)
				}
			}
		})
		b.Run(name+"/nsclone-init", func(b *testing.B) {
			b.ReportAllocs()
			s := spawnSpec
			s.Init = true
			for i := 0; i < b.N; i++ {
				st, err := nsclone.Run(context.Background(), &s)
				if err != nil || st.Code() != 0 {
					b.Fatalf("nsclone.Run: %v %v", st, err)
				}
			}
		})
		b.Run(name+"/rawC", func(b *testing.B) {
			// csrc/bench_clone.c through cgo, in this process (its clone
			// copies our page tables, heap included, like the
			// walkthrough's).
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := rawCLoop(1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/osexec", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c := exec.Command("/bin/true")
				c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWIPC | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
				if err := c.Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/unshare", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c := exec.Command("unshare", "--fork", "--ipc", "--pid", "--mount", "--mount-proc", "/bin/true")
				if out, err := c.CombinedOutput(); err != nil {
					b.Fatalf("unshare: %v: %s", err, out)
				}
			}
		})
		runtime.KeepAlive(h)
		h = nil
		runtime.GC()
		debug.FreeOSMemory()
	}
}

// BenchmarkCLI: whole processes, bin/nsbox run against unshare, as a shell
// would start them.
func BenchmarkCLI(b *testing.B) {
	testutil.RequirePriv(b)
	nsboxBin := bin.Need(b)
	// go-path is nsbox with its C fast path off (NSBOX_NO_FASTPATH=1): the
	// Go runtime starts, parses with pflag and spawns through nsclone.
	nsboxArgs := []string{nsboxBin, "run", "--ipc", "--pid", "--mount", "--mount-proc", "--no-init", "/bin/true"}
	cases := []struct {
		name string
		argv []string
		env  string
	}{
		{"nsbox", nsboxArgs, ""},
		{"unshare", []string{"unshare", "--fork", "--ipc", "--pid", "--mount", "--mount-proc", "/bin/true"}, ""},
		{"go-path", nsboxArgs, "NSBOX_NO_FASTPATH=1"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var stderr bytes.Buffer
			env := os.Environ()
			if c.env != "" {
				env = append(env, c.env)
			}
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(c.argv[0], c.argv[1:]...)
				cmd.Env = env
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					b.Fatalf("%s: %v: %s", c.argv[0], err, stderr.String())
				}
			}
		})
	}
}

// BenchmarkCLIInit: nsbox run's default, with the init as PID 1, against
// unshare, whose forked child is PID 1.
func BenchmarkCLIInit(b *testing.B) {
	testutil.RequirePriv(b)
	nsboxBin := bin.Need(b)
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"nsbox", []string{nsboxBin, "run", "/bin/true"}},
		{"unshare", []string{"unshare", "--fork", "--ipc", "--pid", "--mount", "--mount-proc", "/bin/true"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if out, err := exec.Command(c.argv[0], c.argv[1:]...).CombinedOutput(); err != nil {
					b.Fatalf("%s: %v: %s", c.argv[0], err, out)
				}
			}
		})
	}
}
