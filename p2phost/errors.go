package p2phost

import (
	"errors"

	"github.com/p2ptun/p2ptun/spec"
)

// Sentinel errors returned by the host; check them with errors.Is. The node
// hands them on as its own (node.ErrUsage, node.ErrAddrInUse).
var (
	// ErrUsage marks a setting that cannot work: a swarm address that is
	// not on this host, an unknown DHT mode. It is spec.ErrInvalid, so that
	// every layer reports bad input with one sentinel.
	ErrUsage = spec.ErrInvalid
	// ErrAddrInUse means a swarm address is taken by another process.
	ErrAddrInUse = errors.New("address already in use")
)
