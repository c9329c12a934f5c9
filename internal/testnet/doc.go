// Package testnet holds the loopback servers that tests in several
// packages need: a TCP server that runs a handler per connection and stops
// with the test, an echo handler, and a Unix socket that accepts and never
// answers (a stuck daemon), and short paths for Unix sockets. It is for
// tests only.
package testnet
