// Package testutil holds the helpers every nsbox test shares: the privilege
// gate (skip without root, fail under NSBOX_REQUIRE_PRIV=1), unique names,
// throwaway network namespaces made with iproute2 as an independent tool,
// running observer commands, and a TestMain wrapper that fails on leaked file
// descriptors. It is internal: tests only.
package testutil
