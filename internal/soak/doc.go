// Package soak owns the load that the soak tests put through real p2ptun
// daemons: a checked exchange protocol (Spec, Exchange, Server) in which
// every byte either way is compared with a deterministic stream and with
// a SHA-256 of it, a pool of workers that open, use and close connections
// until a duration ends (Load), an echo server and a holder of many
// concurrent connections (Echo, Hold), and a sampler of a process's open
// fds, RSS and goroutines (Sample). It starts no daemon and knows nothing
// of p2ptun's packages: the tests in the repository root wire it to the
// built binary. Tests are its only users.
package soak
