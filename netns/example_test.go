package netns_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/nsbox/nsbox/netns"
)

// Add, Exec and Delete are `ip netns add`, `ip netns exec` and `ip netns
// del`: the namespace is a bind mount under /run/netns that iproute2 sees.
func ExampleAdd() {
	ctx := context.Background()
	if err := netns.Add(ctx, "lab1"); err != nil {
		fmt.Println(err)
		return
	}
	defer netns.Delete(ctx, "lab1")
	code, err := netns.Exec(ctx, "lab1", []string{"ip", "link"}, [3]*os.File{os.Stdin, os.Stdout, os.Stderr})
	fmt.Println("exit", code, err)
}

// ValidateName refuses names that cannot be a file in /run/netns before
// anything touches the file system.
func ExampleValidateName() {
	fmt.Println(netns.ValidateName("lab1"))
	fmt.Println(errors.Is(netns.ValidateName("a/b"), netns.ErrInvalidName))
	fmt.Println(errors.Is(netns.ValidateName(".."), netns.ErrInvalidName))
	// Output:
	// <nil>
	// true
	// true
}
