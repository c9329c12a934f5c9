// Package cli owns p2ptun's command line: the urfave/cli app, its commands
// and flags (with P2PTUN_* environment variables), text and --json output,
// and the mapping from errors to documented exit codes.
//
// Actions parse and validate their arguments, then call the api client (or,
// for init, id and version, the config and node packages). The daemon and
// relay commands merge their flags over config.toml into a daemon.Config
// and run it; SIGHUP asks it to reload. Nothing below this package knows
// about flags.
package cli
