// Package procs runs the processes the benchmarks measure: a p2ptun
// daemon in a home of its own (made by `p2ptun init`, with the
// benchmark's limits) and the CLI commands it is driven with, any process
// that a goroutine waits for and that stops with SIGTERM then SIGKILL, and
// the polling that waits for one to be ready. Both benchmarks use it:
// `make bench` on loopback and `make bench-wan` in the WAN link's network
// namespaces (through Options.Start).
//
// It knows nothing of rows, loads or results.
package procs
