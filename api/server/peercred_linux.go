//go:build linux

package server

import (
	"log/slog"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"

	// golang.org/x/sys/unix rather than syscall, deliberately: syscall is
	// frozen and says new code should use x/sys, whose GetsockoptUcred and
	// Ucred are the maintained ones. It is no new dependency: go-libp2p
	// already brings the module in.
	"golang.org/x/sys/unix"
)

// ownerOnly wraps ln so that connections from processes running as
// anyone but uid, root (uid root, normally 0) or (gid >= 0) a member of
// group gid are marked refused: logged at Warn with the peer's uid and
// pid, and answered 403 by the server (see refusedUID) without running any
// handler.
func ownerOnly(ln *net.UnixListener, uid, root, gid int, log *slog.Logger) net.Listener {
	return &peerCredListener{UnixListener: ln, uid: uid, root: root, gid: gid, log: log}
}

// peerCredListener checks each connection's SO_PEERCRED: the credentials
// the kernel recorded when the peer called connect(2), which the peer
// cannot forge.
type peerCredListener struct {
	*net.UnixListener
	uid, root, gid int
	log            *slog.Logger
}

var _ net.Listener = (*peerCredListener)(nil)

// Accept returns the next connection, a *refusedConn if its peer may not
// use the API.
func (l *peerCredListener) Accept() (net.Conn, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	cred, err := peerCred(c)
	switch {
	case err != nil:
		l.log.Warn("api connection refused: cannot read the peer's credentials", "err", err)
		return &refusedConn{Conn: c, uid: -1}, nil
	case l.allowed(cred):
		return c, nil
	default:
		l.log.Warn("api connection refused: the peer runs as another user", "uid", cred.Uid, "pid", cred.Pid, "allowed_uid", l.uid, "allowed_gid", l.gid)
		return &refusedConn{Conn: c, uid: int(cred.Uid)}, nil
	}
}

// allowed reports whether the peer may use the API: it runs as the
// daemon's uid or as root, or its gid at connect(2) is the operator group,
// or its user is a member of that group in the group database. The group
// database is the sound source for supplementary groups: SO_PEERCRED
// carries only the primary gid, and /proc/PID/status may by then describe
// another process that reused the pid. The socket's mode (0660, group
// gid) has already made the kernel check the peer's groups at connect(2).
func (l *peerCredListener) allowed(cred *unix.Ucred) bool {
	if int(cred.Uid) == l.uid || int(cred.Uid) == l.root {
		return true
	}
	if l.gid < 0 {
		return false
	}
	if int(cred.Gid) == l.gid {
		return true
	}
	u, err := user.LookupId(strconv.FormatUint(uint64(cred.Uid), 10))
	if err != nil {
		return false
	}
	gids, err := u.GroupIds()
	return err == nil && slices.Contains(gids, strconv.Itoa(l.gid))
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

// fileOwner returns the uid and gid that own the file fi describes.
func fileOwner(fi os.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
