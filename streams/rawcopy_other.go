//go:build !unix

package streams

import (
	"sync/atomic"
	"syscall"
)

// rawConnOf: reading and writing a socket through its RawConn is done on
// Unix only.
func rawConnOf(HalfCloser) syscall.RawConn { return nil }

func rawCopy(HalfCloser, HalfCloser, syscall.RawConn, *atomic.Bool, *atomic.Bool, *atomic.Int64) (int64, error) {
	panic("streams: rawCopy without rawConnOf")
}

// rawWriter: writing a socket through its RawConn is done on Unix only.
type rawWriter struct{}

func newRawWriter(HalfCloser) *rawWriter { return nil }

func (*rawWriter) write([]byte, func() error) (int, error) {
	panic("streams: rawWriter without newRawWriter")
}

func probeSocket(syscall.RawConn) error { return nil }
