package server

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
)

// fdReserve is how many file descriptors the API holds in reserve: one for
// the connection it accepts when the process has run out, the rest for
// what that request opens (rewriting config.toml for `access deny`).
const fdReserve = 4

// reserveListener keeps fdReserve descriptors open on /dev/null so that
// the API still answers when tunnels have used up the process's open-file
// limit, and the owner can see why and deny the peer responsible. Out of
// descriptors, Accept gives the reserve up, takes the waiting connection,
// and takes the reserve back when that connection closes.
type reserveListener struct {
	net.Listener

	mu sync.Mutex
	// spare is the reserve; it is empty while it is given up for a
	// connection that is still open (or could not be opened again).
	spare  []*os.File
	closed bool
}

func withReserve(ln net.Listener) *reserveListener {
	l := &reserveListener{Listener: ln}
	l.refill()
	return l
}

// refill opens what is missing of the reserve, as far as it can.
func (l *reserveListener) refill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	for len(l.spare) < fdReserve {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return
		}
		l.spare = append(l.spare, f)
	}
}

// release closes the reserve; it reports false if there was none to give
// up (it is lent, or could not be refilled).
func (l *reserveListener) release() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.spare) == 0 {
		return false
	}
	for _, f := range l.spare {
		f.Close()
	}
	l.spare = nil
	return true
}

func (l *reserveListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil || !outOfFDs(err) || !l.release() {
		return c, err
	}
	c, err = l.Listener.Accept()
	if err != nil {
		l.refill()
		return nil, err
	}
	return &reserveConn{Conn: c, done: sync.OnceFunc(l.refill)}, nil
}

// Close closes the listener and the reserve.
func (l *reserveListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.spare {
		f.Close()
	}
	l.spare, l.closed = nil, true
	return err
}

// reserveConn is a connection accepted with the reserve; closing it takes
// the reserve back.
type reserveConn struct {
	net.Conn
	done func()
}

func (c *reserveConn) Close() error {
	err := c.Conn.Close()
	c.done()
	return err
}

// outOfFDs reports whether err is the process or the system running out
// of file descriptors.
func outOfFDs(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
