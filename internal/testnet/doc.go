// Package testnet holds the loopback servers that tests in several
// packages need: a TCP server that runs a handler per connection and stops
// with the test, an echo handler, a Unix socket that accepts and never
// answers (a stuck daemon), short paths for Unix sockets, and a bare
// libp2p host on loopback. It is for
// tests only.
package testnet
