package streams

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// probeInterval is how long a write to a socket may stay blocked (its
// reader is not reading) before the copy checks whether its own source has
// failed meanwhile; it checks again every probeInterval for as long as the
// write stays blocked. A source that was reset, or whose libp2p connection
// is gone, aborts the pipe: without the check, nothing would notice until
// the reader read again, since the other direction's goroutine is waiting
// on the socket, not on the source. A variable for the tests.
var probeInterval = time.Second

// readDeadliner is implemented by libp2p streams (and sockets): with a
// read deadline in the past, a Read of nothing returns at once.
type readDeadliner interface{ SetReadDeadline(time.Time) error }

// writeDeadliner is implemented by sockets (and libp2p streams): a write
// blocked past the deadline returns os.ErrDeadlineExceeded.
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// connHolder is implemented by libp2p streams: the connection they run on.
type connHolder interface{ Conn() network.Conn }

var (
	_ readDeadliner  = (network.Stream)(nil)
	_ connHolder     = (network.Stream)(nil)
	_ writeDeadliner = (*net.TCPConn)(nil)
)

// sink is where one direction of a pipe writes: dst, with the bytes
// counted. When dst is a socket and src can be probed, a write that blocks
// is watched (rawWriter); any other write is a plain dst.Write.
type sink struct {
	dst     HalfCloser
	counter *atomic.Int64
	raw     *rawWriter // dst's, when its blocked writes are watched
	src     HalfCloser
	srcRaw  syscall.RawConn // src's, when src is a socket
	written int64           // bytes written to dst
	carry   []byte          // read from src by probes, to write after the bytes being written
	failed  error           // what a probe found, which ended a write
}

// newSink writes to dst what is read from src; srcRaw is src's RawConn
// when src is a socket (the caller has it already), nil otherwise.
func newSink(dst, src HalfCloser, srcRaw syscall.RawConn, counter *atomic.Int64) sink {
	s := sink{dst: dst, counter: counter, src: src}
	if _, ok := src.(readDeadliner); !ok && srcRaw == nil {
		return s // nothing to probe src with
	}
	if s.raw = newRawWriter(dst); s.raw != nil {
		s.srcRaw = srcRaw
	}
	return s
}

// write writes p to dst, then whatever probes read from src meanwhile. A
// short write is an error.
func (s *sink) write(p []byte) error {
	if err := s.writeOnce(p); err != nil {
		return err
	}
	for len(s.carry) > 0 {
		c := s.carry
		s.carry = nil
		if err := s.writeOnce(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *sink) writeOnce(p []byte) error {
	var (
		nw  int
		err error
	)
	if s.raw != nil {
		nw, err = s.raw.write(p, s.probe)
	} else {
		nw, err = s.dst.Write(p)
	}
	s.written += int64(max(nw, 0))
	if nw > 0 && s.counter != nil {
		s.counter.Add(int64(nw))
	}
	switch {
	case s.failed != nil:
		return s.failed // src's error, not dst's
	case err == nil && nw != len(p):
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// probe reports (and keeps in s.failed), without blocking, whether src has
// failed: a socket with a pending error (a RST), a libp2p stream that was
// reset, or whose connection is closed. nil means src may still deliver,
// including a clean EOF: the data before it is still wanted. Only the
// goroutine that reads src may call it: it moves src's read deadline, and
// it may read a byte from src, which it appends to s.carry.
func (s *sink) probe() error {
	s.failed = s.check()
	return s.failed
}

func (s *sink) check() error {
	if s.srcRaw != nil {
		return probeSocket(s.srcRaw)
	}
	d := s.src.(readDeadliner)
	if err := d.SetReadDeadline(time.Unix(1, 0)); err != nil {
		return nil
	}
	// A byte, not nothing: a stream opened with lazy protocol negotiation
	// (go-multistream) answers a Read of nothing itself, without asking
	// the stream. With its read deadline past, a yamux or QUIC stream
	// returns a byte if one is buffered, its reset error if it was reset
	// (even with data buffered), and a timeout otherwise, all without
	// blocking.
	var one [1]byte
	n, err := s.src.Read(one[:])
	_ = d.SetReadDeadline(time.Time{})
	if n > 0 {
		s.carry = append(s.carry, one[0])
	}
	if err == io.EOF {
		// Half-closed by its peer: the data is in, but a stream whose
		// connection has gone can take no reply either.
		if c, ok := s.src.(connHolder); ok && c.Conn().IsClosed() {
			return fmt.Errorf("read: connection closed after EOF: %w", net.ErrClosed)
		}
		return nil
	}
	if err == nil || isTimeout(err) {
		return nil
	}
	return fmt.Errorf("read: %w", err)
}

// isTimeout reports whether err is a deadline expiring (os's, or a
// muxer's net.Error).
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
