// Package procs runs the processes the benchmarks measure: a p2ptun
// daemon in a home of its own (made by `p2ptun init`, with the
// benchmark's limits) and the CLI commands it is driven with; any child
// (socat, kubo, iperf3) as a process that a goroutine waits for, started
// with its output in a log and polled until it is ready, stopped with
// SIGTERM then SIGKILL; a command run for its output; the environment
// children get; a free loopback port. Both benchmarks use it: `make bench`
// on loopback and `make bench-wan` in the WAN link's network namespaces
// (through a start func).
//
// It knows nothing of rows, loads or results: the benchmarks decide what
// runs and what "ready" means.
package procs
