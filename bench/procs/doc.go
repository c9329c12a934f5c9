// Package procs starts, watches and stops the benchmark's child processes
// (socat, p2ptun and kubo daemons, iperf3): a process with a goroutine
// that waits for it, started with its output in a log and polled until
// it is ready, stopped with SIGTERM then SIGKILL; a command run for its
// output; the environment children get; a free loopback port.
//
// It knows nothing of rows or measurements: the bench command decides
// what runs and what "ready" means.
package procs
