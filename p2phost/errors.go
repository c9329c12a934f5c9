package p2phost

import (
	"errors"
	"strings"

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

// oneLine flattens libp2p's multi-line dial errors ("all dials failed\n  *
// [addr] cause") so that every error the host logs fits on one line.
func oneLine(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n  * ", "; ")
	return strings.Join(strings.Fields(s), " ")
}
