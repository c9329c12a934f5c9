// Package node owns the running p2ptun node: the tunnel service on a
// libp2p host that package p2phost builds. It owns the listener and stream
// registries and offers the operations (listen, forward, pipe, close,
// list, ping, share) that the control API uses; it opens and closes the
// config file's tunnels for package reconcile, hands invites to package invite and feeds its events
// and metrics to package telemetry. It tells the host when a stream to a
// peer opens and closes, so that the host protects peers with live
// streams from the connection manager's trimming.
//
// It takes tunnels as parsed specs (package spec) and never re-validates
// their strings; the one preparation of a peer before it is dialed
// (not this node, allowed by the access policy, its addresses remembered)
// is here. It knows nothing about HTTP or flags, nor how the host is
// built.
package node
