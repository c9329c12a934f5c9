// Package balance owns the peers of a forward with several: their health
// (up, or down and why, from libp2p's connectedness events and from
// failed stream opens), a watcher per peer that redials one that is down
// through its own peerdial.Gate after a hold-off, and the policies that
// order the peers for each new connection (failover, rtt, round-robin).
//
// It opens no stream and accepts no client: a forward hands it how to
// reach a peer (a connect and a try func) and the Owner that runs its
// goroutines (the forward's tunnel), and asks it, per connection, to try
// the peers in order (Set.Open).
package balance
