package caps_test

import (
	"fmt"

	"github.com/nsbox/nsbox/sandbox/caps"
)

// Drop everything, then keep the right to bind low ports.
func ExampleApply() {
	all := caps.Set(1<<41 - 1) // CAP_CHOWN .. CAP_CHECKPOINT_RESTORE
	keep, err := caps.Apply(all, all, []caps.Op{{Drop: true, Name: "ALL"}, {Name: "CAP_NET_BIND_SERVICE"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(keep)
	// Output: net_bind_service
}
