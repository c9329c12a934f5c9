// Package daemon assembles and runs a p2ptun daemon from its config: the
// node, the control API server, the metrics server, sd_notify, reload and
// the ordered shutdown (drain), the ready file and the home lock.
//
// New takes a Config that is already merged (config.toml's settings with the
// run's overrides applied) and checks it; Run runs the daemon until its
// context ends, then shuts it down and removes what it created. Tests drive
// a daemon in-process with New and Run.
//
// It does not know about flags, environment variables or exit codes: cli
// turns those into a Config and maps the errors; main owns the signals
// (SIGHUP calls Reload).
package daemon
