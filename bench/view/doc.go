// Package view benchmarks the sandbox view, named sandboxes and enter
// against their peers, side by side in one run: nsbox run --rootfs with
// read-only binds, --dev and --tmpfs against the same view through
// bubblewrap; run --name against the same run without a name; nsbox enter
// against util-linux nsenter --all -t PID with the same command.
package view
