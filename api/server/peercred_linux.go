//go:build linux

package server

import (
	"log/slog"
	"net"
	"os"
	"syscall"

	// golang.org/x/sys/unix rather than syscall, deliberately: syscall is
	// frozen and says new code should use x/sys, whose GetsockoptUcred and
	// Ucred are the maintained ones. It is no new dependency: go-libp2p
	// already brings the module in.
	"golang.org/x/sys/unix"
)

// ownerOnly wraps ln so that its Accept returns only connections from
// processes running as uid. Every other connection is closed at once,
// before a byte is read from it, and logged at Warn with the peer's uid
// and pid; Accept then goes on to the next connection, so http.Server
// never sees a refused one.
func ownerOnly(ln *net.UnixListener, uid int, log *slog.Logger) net.Listener {
	return &peerCredListener{UnixListener: ln, uid: uid, log: log}
}

// peerCredListener checks each connection's SO_PEERCRED: the credentials
// the kernel recorded when the peer called connect(2), which the peer
// cannot forge.
type peerCredListener struct {
	*net.UnixListener
	uid int
	log *slog.Logger
}

var _ net.Listener = (*peerCredListener)(nil)

// Accept waits for the next connection from the allowed uid.
func (l *peerCredListener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		cred, err := peerCred(c)
		switch {
		case err != nil:
			l.log.Warn("api connection refused: cannot read the peer's credentials", "err", err)
		case int(cred.Uid) != l.uid:
			l.log.Warn("api connection refused: the peer runs as another user", "uid", cred.Uid, "pid", cred.Pid, "allowed_uid", l.uid)
		default:
			return c, nil
		}
		_ = c.Close()
	}
}

// peerCred returns the credentials of the process at the other end of c.
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		cred *unix.Ucred
		serr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, serr
}

// fileOwner returns the uid that owns the file fi describes.
func fileOwner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
