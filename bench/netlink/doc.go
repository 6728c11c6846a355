// Package netlinkbench measures nsbox's named namespaces and rtnetlink
// against iproute2 in the same run: `nsbox -n NS link|addr|route show`
// against `ip -n NS ... show` as whole processes, alternated
// (BenchmarkShowAlternated); building N namespaces each joined to a hub
// namespace by a veth (addresses on both ends, both up) with `nsbox -b`,
// with the fastest `ip -batch` formulations and with one `ip` process per
// command the walkthrough's way (add, then move); the per-object cost at two
// sizes; tearing the topology down; and `netns add` + `del` per call.
//
// Every benchmark makes its own hub namespace and treats it as the root, so
// the host's network is never touched. They need root (testutil.RequirePriv)
// and the ip tool; the nsbox binary is built once into a temporary folder.
// Sizes are small by default so that `make test` (-benchtime=1x) stays fast;
// NSBOX_BENCH_FULL=1 (make bench) uses 200 namespaces and 100/1000 objects.
package netlinkbench
