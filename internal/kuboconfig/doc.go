// Package kuboconfig holds the settings that keep a kubo (`ipfs`) node on
// loopback, with `ipfs p2p` on: the kubo interop tests and the benchmark's
// kubo row apply them to a fresh repository. It runs nothing: callers
// apply each pair with `ipfs config --json`.
package kuboconfig
