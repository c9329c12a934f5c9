// Package homedir owns p2ptun's files in its home directory other than
// what config.toml says (package config): creating a home (Init, which
// writes DefaultConfig, the commented config.toml) and refusing one others
// can open (Check); the identity key and the swarm key, readable by their
// owner only; the peer address cache; the daemon lock (one daemon per
// home); and the edits the daemon makes to config.toml (access, listen
// --save, forward --save). Those edits take one writer at a time, in this
// process and across processes (flock on the file's directory), change
// only the keys they set (positions from config/tomlpos), check the result
// with config.Parse and replace the file atomically, through a symlink to
// its target: a failed edit changes nothing.
package homedir
