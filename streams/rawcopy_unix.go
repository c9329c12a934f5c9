//go:build unix

package streams

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// rawConnOf returns x's RawConn when x is a socket that can be read and
// written through it (TCP, Unix), and nil otherwise (libp2p streams).
func rawConnOf(x HalfCloser) syscall.RawConn {
	sc, ok := x.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawCopy is proxyCopy for a socket source. It waits for the socket to be
// readable before it takes a buffer from the pool and gives the buffer back
// once the bytes are written, so an idle connection holds no buffer at all,
// and a busy one always reads into the big one.
func rawCopy(dst, src HalfCloser, rc syscall.RawConn, counter *atomic.Int64) (int64, error) {
	out := newSink(dst, src, counter)
	for {
		var (
			bp   *[]byte
			nr   int
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			bp = bufPool.Get().(*[]byte)
			for {
				nr, rerr = syscall.Read(int(fd), *bp)
				if !errors.Is(rerr, syscall.EINTR) {
					break
				}
			}
			if errors.Is(rerr, syscall.EAGAIN) {
				// Not readable: give the buffer back while Go's poller waits.
				bufPool.Put(bp)
				bp = nil
				return false
			}
			return true
		})
		if err == nil && rerr != nil {
			err = os.NewSyscallError("read", rerr)
		}
		if err != nil {
			if bp != nil {
				bufPool.Put(bp)
			}
			return out.written, fmt.Errorf("read: %w", err)
		}
		if nr == 0 {
			bufPool.Put(bp)
			return out.written, closeWrite(dst)
		}
		werr := out.write((*bp)[:nr])
		bufPool.Put(bp)
		if werr != nil {
			return out.written, werr
		}
	}
}

// writeWatching writes p to the socket dst (wc is its RawConn) as dst.Write
// would, with one difference: once the socket's buffer is full and the
// write has to wait, it arms a write deadline probeInterval away, and each
// time that expires it calls probe; an error from probe ends the write.
// A write that does not block costs what dst.Write costs: one write(2),
// no timer.
func writeWatching(dst writeDeadliner, wc syscall.RawConn, p []byte, probe func() error) (int, error) {
	written := 0
	armed := false
	for {
		var werr error
		err := wc.Write(func(fd uintptr) bool {
			for written < len(p) {
				n, e := syscall.Write(int(fd), p[written:])
				switch {
				case e == nil && n > 0:
					written += n
				case e == nil:
					werr = io.ErrUnexpectedEOF
					return true
				case errors.Is(e, syscall.EINTR):
				case errors.Is(e, syscall.EAGAIN):
					if !armed {
						// Go's poller waits for the socket to drain; the
						// deadline wakes it if that takes a while.
						armed = true
						_ = dst.SetWriteDeadline(time.Now().Add(probeInterval))
					}
					return false
				default:
					werr = os.NewSyscallError("write", e)
					return true
				}
			}
			return true
		})
		if err == nil {
			err = werr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if perr := probe(); perr != nil {
				return written, perr
			}
			// The source is alive: wait on, with a fresh deadline once
			// the write blocks again.
			armed = false
			_ = dst.SetWriteDeadline(time.Time{})
			continue
		}
		if armed {
			_ = dst.SetWriteDeadline(time.Time{})
		}
		return written, err
	}
}

// probeSocket reports the error pending on a socket (a RST received), if
// any, without reading from it. The pending error is cleared: call it only
// to decide whether to abort.
func probeSocket(rc syscall.RawConn) error {
	var (
		soerr int
		gerr  error
	)
	if err := rc.Control(func(fd uintptr) {
		soerr, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
	}); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if gerr != nil {
		return nil // cannot tell: keep waiting
	}
	if soerr != 0 {
		return fmt.Errorf("read: %w", syscall.Errno(soerr))
	}
	return nil
}
