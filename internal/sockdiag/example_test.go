package sockdiag_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nsbox/nsbox/internal/sockdiag"
	"github.com/nsbox/nsbox/netns"
)

// Before removing a namespace's address, let the connections its processes
// left behind finish their FIN exchange, for at most a second.
func ExampleWait() {
	h, err := netns.Open("lab")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	left, waited, err := sockdiag.Wait(context.Background(), h, time.Second, 5*time.Millisecond)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d orphaned connections left after %s\n", left, waited)
}
