package caps

import (
	"os"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
)

func TestParse(t *testing.T) {
	for _, n := range []string{"CAP_NET_ADMIN", "net_admin", "Net_Admin", "cap_net_admin"} {
		c, err := Parse(n)
		if err != nil || c != capability.CAP_NET_ADMIN {
			t.Errorf("Parse(%q) = %v, %v; want net_admin", n, c, err)
		}
	}
	if _, err := Parse("CAP_FLY"); err == nil || !strings.Contains(err.Error(), "CAP_FLY") {
		t.Errorf("Parse(CAP_FLY) = %v; want an error naming it", err)
	}
}

func TestApply(t *testing.T) {
	all := Set(1<<41 - 1)
	got, err := Apply(all, all, []Op{{Drop: true, Name: "all"}, {Name: "chown"}, {Name: "kill"}, {Drop: true, Name: "CAP_CHOWN"}})
	if err != nil || got != Set(1<<capability.CAP_KILL) {
		t.Fatalf("Apply = %v, %v; want kill", got, err)
	}
	held := all.Without(capability.CAP_SYS_RESOURCE)
	if _, err := Apply(held, held, []Op{{Name: "sys_resource"}}); err == nil || !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") {
		t.Fatalf("adding a capability the caller lacks: %v; want an error naming it", err)
	}
	if _, err := Apply(all, all, []Op{{Drop: true, Name: "bogus"}}); err == nil || !strings.Contains(err.Error(), "--cap-drop bogus") {
		t.Fatalf("unknown name: %v", err)
	}
}

// Effective (capget) agrees with the kernel's CapEff line of the process.
func TestEffective(t *testing.T) {
	got, err := Effective()
	if err != nil {
		t.Fatal(err)
	}
	want, err := ProcSet(os.Getpid(), "CapEff")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Effective = %#x; /proc/%d/status CapEff = %#x", uint64(got), os.Getpid(), uint64(want))
	}
}
