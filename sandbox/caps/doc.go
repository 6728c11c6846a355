// Package caps names Linux capabilities and computes the set a sandbox's
// payload keeps.
//
// Names and numbers come from github.com/moby/sys/capability (the table
// runc, containerd and Docker use), so a capability added to the kernel is
// known once that module knows it; nothing here is a hand-kept list. A name
// is accepted as capabilities(7) spells it, with or without the CAP_ prefix,
// in any case ("CAP_NET_ADMIN", "net_admin", "Net_Admin").
//
// The package only computes sets; nsclone applies them in the spawned child
// (bounding set first, then permitted, effective and inheritable, and the
// ambient set for a non-root payload). Reading the caller's sets needs no
// privilege.
//
// Debugging: grep Cap /proc/PID/status, and capsh --decode=HEX.
package caps
