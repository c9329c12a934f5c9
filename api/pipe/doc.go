// Package pipe is the protocol a `p2ptun pipe` speaks on its API
// connection once POST /v0/pipe has switched it (101 Switching
// Protocols, Upgrade: p2ptun-pipe): frames that carry one libp2p
// stream's bytes and what a Unix socket cannot say by itself, a
// half-close, a clean end, a reset and a refusal's cause. It holds both
// ends: the client's Conn (api.Client.Pipe) and the daemon's end, which
// api/server bridges to the stream.
//
// It knows nothing of HTTP beyond writing the 101 answer, nor of nodes.
package pipe
