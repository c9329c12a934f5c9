//go:build unix && !linux

package streams

import (
	"sync/atomic"
	"syscall"
)

// peerReset: telling a reset from a FIN after the error was taken by a
// write needs Linux's TCP_INFO state; elsewhere an EOF is an EOF.
func peerReset(syscall.RawConn, *atomic.Bool) bool { return false }
