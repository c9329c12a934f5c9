// Package config owns what config.toml says: its types, their defaults
// (Default; the commented file that shows them is homedir.DefaultConfig),
// parsing and validation (Load, Parse, Validate, for `config check` and
// the daemon alike). Each [[listen]] and [[forward]] table is parsed into
// its spec.Spec when the file is loaded, and an error names the line of
// its key or table (found with config/tomlpos).
//
// It does not write files (package config/homedir does: the identity key,
// the home, the default file, the edits to config.toml) and it does not
// build anything from the config: the node and p2phost packages do.
package config
