//go:build !unix

package streams

import (
	"sync/atomic"
	"syscall"
)

// rawReader: reading a socket through its RawConn is done on Unix only.
func rawReader(HalfCloser) syscall.RawConn { return nil }

func rawCopy(HalfCloser, HalfCloser, syscall.RawConn, *atomic.Int64) (int64, error) {
	panic("streams: rawCopy without rawReader")
}
