// Package nat gives the sandboxes of a bridge a way out (masquerade of the
// bridge's IPv4 subnets) and a way in (published ports: DNAT from a host port
// to a sandbox's address and port), as nftables rules in one table, "ip
// nsbox", in the bridge's network namespace, written through
// github.com/google/nftables.
//
// # What it adds
//
// The table holds four base chains: prerouting and output (nat, priority
// dstnat) for published ports, postrouting (nat, srcnat) for masquerade and
// the hairpin of published ports (a sandbox reaching another one through
// the host port), and forward (filter) accepting what leaves and returns to
// a masqueraded bridge. Every rule carries a comment naming the entry it
// belongs to and its owner, so that nsbox removes exactly the rules it added
// and nothing else: an entry is removed rule by rule, and the table itself
// is deleted when its last entry goes. When the first entry is added with
// IPv4 forwarding off, forwarding is turned on and turned off again when the
// table is deleted.
//
// # Owners and clean-up
//
// An entry is held either by nobody (Owner zero: it stays until removed, as
// `nsbox nat add`) or by a process (its pid and start time, as `nsbox run
// --publish`). Every operation of a Table first removes the entries whose
// owner is gone, so the rules of a SIGKILLed nsbox disappear at the next
// nsbox call that touches the table (Collect does only that).
//
// Operations from different processes are serialised by an flock on
// /run/nsbox/nat.lock, since deciding that the table is empty and deleting
// it must not interleave with another process adding to it.
//
// # Privileges and debugging
//
// Everything needs CAP_NET_ADMIN in the bridge's namespace (and root to
// create /run/nsbox). To see what nsbox did, run `nft list table ip nsbox`
// (or `nsbox -n NS nat list`) inside that namespace; `nft monitor` shows the
// changes as they happen.
package nat
