// Package report turns the output of `go test -bench` over nsbox's benchmark
// packages into the benchmark report: medians per sub-benchmark, ratios of
// each peer against nsbox measured in the same run, a Markdown table
// (bench/RESULTS.md) and a grouped bar chart (bench/results.svg).
//
// Convention: a benchmark group is one top-level benchmark (BenchmarkSpawn);
// its sub-benchmarks are the implementations measured side by side
// (BenchmarkSpawn/nsclone, BenchmarkSpawn/unshare). The sub-benchmark whose
// name starts with "nsbox" or "nsclone" is the reference of its group; every
// other one is a peer, and its ratio is nsbox's median divided by the peer's
// (below 1.0 means nsbox is faster). Deeper names (Group/case/impl) group by
// everything but the last element.
//
// It needs no privileges and runs nothing: cmd/nsbox-bench does the running.
package report
