// Package registry owns the two tables a running node keeps: the listener
// registry (every `listen` and `forward`) and the stream registry (every
// live bridged connection). It assigns monotonic IDs, lists entries in a
// stable order, and closes entries by ID or by filter.
//
// The registry does not know how a listener or stream is implemented: each
// entry carries a Close function supplied by its owner, and the registry
// calls it outside its lock.
package registry
