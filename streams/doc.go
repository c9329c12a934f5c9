// Package streams owns Pipe, the only code in p2ptun that copies bytes.
//
// A Pipe joins two full-duplex byte streams (a local TCP connection and a
// libp2p stream), copying each direction on its own goroutine. A clean
// EOF on one side half-closes the other (CloseWrite) and leaves the opposite
// direction flowing; an error on either side, or cancellation, aborts both
// ends: the libp2p stream is reset and the TCP connection is closed with a
// RST, so neither peer mistakes a failure for a clean end of data. A copy
// blocked writing to a socket that is not read checks its source once a
// second, so that a reset or a lost connection still ends the pipe.
//
// Flow carries datagrams through a Pipe: a flow of them seen as a byte
// stream of frames (a 2-byte length, then the datagram), boundaries kept,
// what does not fit dropped and counted, never split.
//
// The package knows nothing about peers, protocols or registries; callers
// pass counters they want kept up to date.
package streams
