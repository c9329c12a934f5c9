package balance

import (
	"slices"
	"time"
)

// Policy is how a forward with several peers picks the peer of each new
// connection among those that are up (spec.Balance names the same
// policies).
type Policy string

// The balance policies.
const (
	// Failover takes the first peer that is up, in the order given. The
	// default.
	Failover Policy = "failover"
	// RTT takes the peer with the lowest measured round-trip time; peers
	// not yet measured come after, in the order given.
	RTT Policy = "rtt"
	// RoundRobin takes the peers that are up in turn.
	RoundRobin Policy = "round-robin"
)

// health is what a policy knows of one peer.
type health struct {
	up  bool
	rtt time.Duration // 0: not measured
}

// order returns the indexes of peers in the order a connection tries
// them: the peers that are up, in the order policy b gives them (turn is
// the connection's number, for round-robin), then the peers that are
// down, in the order given, as a last resort when no peer that is up
// takes the connection.
func order(b Policy, peers []health, turn uint64) []int {
	out := make([]int, 0, len(peers))
	for i, p := range peers {
		if p.up {
			out = append(out, i)
		}
	}
	up := len(out)
	switch b {
	case RoundRobin:
		if up > 0 {
			k := int(turn % uint64(up))
			out = append(out[k:up:up], out[:k]...)
		}
	case RTT:
		slices.SortStableFunc(out, func(x, y int) int {
			rx, ry := peers[x].rtt, peers[y].rtt
			switch {
			case rx == ry:
				return 0
			case rx == 0: // not measured: after the measured ones
				return 1
			case ry == 0:
				return -1
			case rx < ry:
				return -1
			}
			return 1
		})
	}
	for i, p := range peers {
		if !p.up {
			out = append(out, i)
		}
	}
	return out
}
