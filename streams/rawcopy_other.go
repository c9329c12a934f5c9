//go:build !unix

package streams

import (
	"sync/atomic"
	"syscall"
)

// rawConnOf: reading and writing a socket through its RawConn is done on
// Unix only.
func rawConnOf(HalfCloser) syscall.RawConn { return nil }

func rawCopy(HalfCloser, HalfCloser, syscall.RawConn, *atomic.Int64) (int64, error) {
	panic("streams: rawCopy without rawReader")
}

func writeWatching(writeDeadliner, syscall.RawConn, []byte, func() error) (int, error) {
	panic("streams: writeWatching without rawConnOf")
}

func probeSocket(syscall.RawConn) error { return nil }
