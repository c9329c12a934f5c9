// Package config owns p2ptun's files on disk: the home directory, the TOML
// config file (its defaults, parsing and validation) and the identity key
// file (creation, permission checks, loading). Each [[listen]] and
// [[forward]] table is parsed into its spec.Spec when the file is loaded,
// and an error names the table's line.
//
// It does not build anything from the config: the node package does.
package config
