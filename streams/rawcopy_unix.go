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
//
// An EOF from a TCP socket that was in fact reset is reported as the reset
// (see peerReset): the other direction's write may have taken the socket's
// ECONNRESET first and left this read a bare EOF, which would pass a clean
// close on to the far end of a connection that failed.
func rawCopy(dst, src HalfCloser, rc syscall.RawConn, dstShut, srcShut *atomic.Bool, counter *atomic.Int64) (int64, error) {
	out := newSink(dst, src, rc, counter)
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
			if peerReset(rc, srcShut) {
				return out.written, fmt.Errorf("read: %w", os.NewSyscallError("read", syscall.ECONNRESET))
			}
			return out.written, closeWrite(dst, dstShut)
		}
		werr := out.write((*bp)[:nr])
		bufPool.Put(bp)
		if werr != nil {
			return out.written, werr
		}
	}
}

// rawWriter writes to a socket through its RawConn as dst.Write would,
// with one difference: once the socket's buffer is full and a write has to
// wait, it arms a write deadline probeInterval away, and each time that
// expires it calls the caller's probe; an error from probe ends the write.
// A write that does not block costs what dst.Write costs: one write(2), no
// timer, no allocation.
type rawWriter struct {
	dst  writeDeadliner
	rc   syscall.RawConn
	step func(fd uintptr) bool // w.writeSome, bound once

	// The write in progress.
	p       []byte
	written int
	armed   bool // the write deadline is set
	err     error
}

// newRawWriter returns a rawWriter for dst, or nil when dst is not a
// socket with a write deadline.
func newRawWriter(dst HalfCloser) *rawWriter {
	d, ok := dst.(writeDeadliner)
	if !ok {
		return nil
	}
	rc := rawConnOf(dst)
	if rc == nil {
		return nil
	}
	w := &rawWriter{dst: d, rc: rc}
	w.step = w.writeSome
	return w
}

func (w *rawWriter) write(p []byte, probe func() error) (int, error) {
	w.p, w.written, w.armed = p, 0, false
	defer func() { w.p = nil }()
	for {
		w.err = nil
		err := w.rc.Write(w.step)
		if err == nil {
			err = w.err
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if perr := probe(); perr != nil {
				return w.written, perr
			}
			// The source is alive: wait on, with a fresh deadline once
			// the write blocks again.
			w.armed = false
			_ = w.dst.SetWriteDeadline(time.Time{})
			continue
		}
		if w.armed {
			_ = w.dst.SetWriteDeadline(time.Time{})
		}
		return w.written, err
	}
}

// writeSome writes what it can of w.p; it returns false, for Go's poller
// to wait, when the socket's buffer is full.
func (w *rawWriter) writeSome(fd uintptr) bool {
	for w.written < len(w.p) {
		n, err := syscall.Write(int(fd), w.p[w.written:])
		switch {
		case err == nil && n > 0:
			w.written += n
		case err == nil:
			w.err = io.ErrUnexpectedEOF
			return true
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			if !w.armed {
				// The deadline wakes the poller if the socket takes a
				// while to drain.
				w.armed = true
				_ = w.dst.SetWriteDeadline(time.Now().Add(probeInterval))
			}
			return false
		default:
			w.err = os.NewSyscallError("write", err)
			return true
		}
	}
	return true
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
