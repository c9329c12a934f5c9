package node

import (
	"errors"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/p2phost"
	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

// Sentinel errors returned by node operations; check them with errors.Is.
// Front ends map each to an exit code or status.
var (
	// ErrUsage marks bad input: a malformed multiaddr, peer ID or protocol,
	// or a listener without an allowlist. It is spec.ErrInvalid (and
	// p2phost.ErrUsage): a spec that does not parse is ErrUsage.
	ErrUsage = spec.ErrInvalid
	// ErrUnreachable means the peer could not be connected to.
	ErrUnreachable = peerdial.ErrUnreachable
	// ErrNoListener means the peer is reachable but serves no such protocol.
	ErrNoListener = peerdial.ErrNoListener
	// ErrNotFound means no listener or stream matched.
	ErrNotFound = registry.ErrNotFound
	// ErrExists means a listener for the protocol or address exists already.
	ErrExists = registry.ErrExists
	// ErrAddrInUse means the local address is taken by another process.
	ErrAddrInUse = p2phost.ErrAddrInUse
	// ErrDenied means this node's own access policy refuses the peer, or
	// the peer refuses this node: its access policy, or its listener's
	// allowlist (a *refusal.Error says which).
	ErrDenied = refusal.ErrDenied
	// ErrRateLimited means the peer's listener refused a stream because
	// this node opens them faster than the peer allows.
	ErrRateLimited = refusal.ErrRateLimited
	// ErrTargetDown means the peer's listener could not reach its target.
	ErrTargetDown = refusal.ErrTargetDown
	// ErrBusy means the peer is over its stream limits.
	ErrBusy = refusal.ErrBusy
	// ErrClosed means the node is shutting down.
	ErrClosed = errors.New("node is closed")
	// ErrInvalidConfig means a config file (or its tunnels) did not parse
	// or validate; it is config.ErrInvalid.
	ErrInvalidConfig = config.ErrInvalid
)
