// Package reconcile owns the config file's tunnels while a node runs: it
// makes the running set match a config's [[listen]] and [[forward]]
// tables (ApplyTunnels at boot and on reload), retries a tunnel that
// fails to start with backoff, reports each one's state, and records a
// tunnel made at runtime with --save as the config tunnel it is saved as.
//
// It drives the node through a small interface (Runner: open a spec,
// close and look up a listener by its ID) and so knows nothing of hosts,
// streams or how a kind of tunnel is built; it parses each table once,
// with the parsers the commands use (package spec), and never builds a
// tunnel itself.
package reconcile
