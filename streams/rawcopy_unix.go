//go:build unix

package streams

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
)

// rawReader returns src's RawConn when src is a socket that can be read
// through it (TCP, Unix), and nil otherwise (libp2p streams).
func rawReader(src HalfCloser) syscall.RawConn {
	sc, ok := src.(syscall.Conn)
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
	var written int64
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
			return written, fmt.Errorf("read: %w", err)
		}
		if nr == 0 {
			bufPool.Put(bp)
			return written, closeWrite(dst)
		}
		nw, werr := writeCounted(dst, (*bp)[:nr], counter)
		bufPool.Put(bp)
		written += int64(nw)
		if werr != nil {
			return written, werr
		}
	}
}
