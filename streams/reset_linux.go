package streams

import (
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpClose is Linux's TCP_CLOSE state (include/net/tcp_states.h).
const tcpClose = 7

// peerReset reports whether a TCP socket that has just read EOF was in
// fact reset. A RST moves the socket to TCP_CLOSE and leaves its error
// pending; whichever call comes first takes the error, so when a write on
// the other direction took it, the read sees only EOF. A FIN, by
// contrast, leaves the socket in CLOSE_WAIT until we close our write half
// too, so TCP_CLOSE without our FIN (shut unset when the state was read)
// can only be a reset. The state is read before shut: shut is set before
// our FIN is sent, so a false shut means no FIN of ours had gone out when
// the state was read. Not a TCP socket, or no answer: false.
func peerReset(rc syscall.RawConn, shut *atomic.Bool) bool {
	var (
		info *unix.TCPInfo
		gerr error
	)
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		return false
	}
	return info.State == tcpClose && !shut.Load()
}
