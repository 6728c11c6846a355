package testutil_test

import (
	"fmt"
	"strings"

	"github.com/nsbox/nsbox/internal/testutil"
)

// UniqueName gives every test its own namespace, link or sandbox name, so
// that test runs on one machine never collide; it is also a valid
// interface name (at most 15 bytes).
func ExampleUniqueName() {
	a, b := testutil.UniqueName("nsbt"), testutil.UniqueName("nsbt")
	fmt.Println(strings.HasPrefix(a, "nsbt"), len(a) <= 15, a != b)
	// Output: true true true
}
