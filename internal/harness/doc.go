// Package harness is the one test harness that the repo's tests share:
// building the p2ptun binary once per test process, running CLI commands
// (from the binary or in-process) and reading their output and exit code,
// starting a daemon in a temporary HOME on loopback with its ready file
// (from the binary, or in-process through a RunFunc such as cli.Run),
// stopping it and checking that it cleans up, following its events
// (`p2ptun events --json`), polling external state with a deadline,
// telling a TCP reset from other ends, checking an echo round trip,
// converting addresses, making peer IDs, reading one sample of a
// gathered Prometheus metric, and a file's mode and group (with another
// group to give it to).
//
// It is for tests only. It does not own loopback servers (internal/testnet
// does), the soak tests' load (internal/soak), or libp2p hosts built
// in-process (a package's tests build those with go-libp2p).
package harness
