// Package testnet holds the loopback TCP servers that tests in several
// packages need: a server that runs a handler per connection and stops
// with the test, and an echo handler. It is for tests only.
package testnet
