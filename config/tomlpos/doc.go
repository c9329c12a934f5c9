// Package tomlpos finds where the tables and keys of a TOML document are
// (their lines and byte ranges), with go-toml's own parser, so that
// whatever TOML allows in a header ([ access ], [access] # note, quoted
// keys) is found where a line-based match would miss it. config uses it
// to name the line of a bad key or table; config/homedir, to change keys in
// place and leave every other byte of the file as it was.
//
// It knows nothing of p2ptun's config.
package tomlpos
