package streams

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
)

// HalfCloser is one end of a bridge: a byte stream whose write half can be
// closed on its own. *net.TCPConn, *net.UnixConn and network.Stream all
// satisfy it.
type HalfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

var (
	_ HalfCloser = (*net.TCPConn)(nil)
	_ HalfCloser = (*net.UnixConn)(nil)
	_ HalfCloser = (network.Stream)(nil)
)

// resetter is implemented by libp2p streams: Reset aborts both directions
// and tells the remote end that the data is incomplete.
type resetter interface{ Reset() error }

// linger is implemented by TCP connections: SetLinger(0) makes Close send a
// RST instead of a FIN.
type linger interface{ SetLinger(sec int) error }

var (
	_ resetter = (network.Stream)(nil)
	_ linger   = (*net.TCPConn)(nil)
)

// Counters receives live byte counts while a bridge runs. Either field may
// be nil.
type Counters struct {
	AtoB *atomic.Int64 // bytes read from a and written to b
	BtoA *atomic.Int64 // bytes read from b and written to a
}

// ErrAborted is what a Pipe reports when Abort ended it before both
// directions finished.
var ErrAborted = errors.New("bridge aborted")

// Copy buffers. A socket source (rawCopy) takes the big one from the pool
// only once it is readable and gives it back after each write, so an idle
// socket holds none. Any other source (a libp2p stream) must hold a buffer
// while it waits in Read: it starts with a small one and moves up a size
// (small, mid, big) each time a read fills the one it has (a bulk
// transfer), and back to the small one when reads come in small again. An
// idle tunnel, the common case when thousands are held open, then ties up
// smallSize in each daemon instead of 2×bufSize, and one that carries
// messages of a few KiB holds midSize, not bufSize.
//
// bufSize fills one yamux frame exactly: p2phost lets go-yamux send
// FrameSize a frame, 12 bytes of it the header, and go-libp2p's TLS cuts
// what it is given into 16 KiB records. A read that fills the buffer is
// one frame, one hand-off to the session's writer and whole records only.
const (
	yamuxHeader = 12
	bufSize     = FrameSize - yamuxHeader
	midSize     = 64<<10 - yamuxHeader
	smallSize   = 512
)

// FrameSize is the largest yamux frame, header included, that a daemon
// sends (p2phost sets go-yamux's MaxMessageSize to it), and what one read
// of a bulk transfer fills. 256 KiB rather than go-yamux's 64 KiB: a
// quarter of the frames, so a quarter of the hand-offs from a stream to
// the session's writer goroutine, for the same bytes. The receiver takes
// frames of any size within its window (at least 256 KiB), so peers with
// other settings, kubo among them, read them as they are.
const FrameSize = 256 << 10

var (
	bufPool   = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}
	midPool   = sync.Pool{New: func() any { b := make([]byte, midSize); return &b }}
	smallPool = sync.Pool{New: func() any { b := make([]byte, smallSize); return &b }}
)

// Pipe copies a→b and b→a, each on a goroutine of its own, until both
// directions have finished, then closes both ends: New prepares it and
// takes ownership of both ends, Start runs it and returns at once, and
// the copying goroutine that finishes last reports the byte counts and
// the error, after both ends are closed. The caller's goroutine is free
// to exit, so a held tunnel costs two small goroutine stacks rather than
// those plus the deep stack of whatever accepted it.
//
// A clean EOF read from one end closes the write half of the other; the
// opposite direction keeps flowing. A read or write error on either
// direction, or Abort, aborts both ends at once (Reset for streams, RST
// for TCP) so that nothing blocks and neither peer sees a clean close.
// That includes an end that fails while the copy from it is blocked
// writing to a socket that is not read: the copy probes its source every
// probeInterval while it waits.
type Pipe struct {
	a, b       HalfCloser
	c          Counters
	done       func(aToB, bToA int64, err error)
	left       atomic.Int32
	aToB, bToA int64 // each written by its copy; read by the last one

	once     sync.Once
	firstErr error
	aborted  atomic.Bool

	// shutA and shutB are set just before a copy closes the write half
	// of a or b: an EOF read from that end afterwards may be its answer
	// to our FIN, not a sign that it was reset (see peerReset).
	shutA, shutB atomic.Bool
}

// New returns a Pipe between a and b that owns both; nothing moves until
// Start.
func New(a, b HalfCloser, c Counters) *Pipe {
	return &Pipe{a: a, b: b, c: c}
}

// Start runs p; done is called once, from one of p's goroutines, when both
// directions have ended, with the error: nil when both ended cleanly,
// the first copy error otherwise, or ErrAborted when Abort ended p.
func (p *Pipe) Start(done func(aToB, bToA int64, err error)) {
	p.done = done
	p.left.Store(2)
	go p.copy(p.b, p.a, &p.shutB, &p.shutA, p.c.AtoB, &p.aToB)
	go p.copy(p.a, p.b, &p.shutA, &p.shutB, p.c.BtoA, &p.bToA)
}

// Abort ends p at once: both ends are closed hard, and done reports
// ErrAborted unless a copy had failed first. It may be called at any
// time, more than once, and before Start.
func (p *Pipe) Abort() { p.abort(ErrAborted) }

func (p *Pipe) abort(cause error) {
	p.once.Do(func() {
		p.firstErr = cause
		p.aborted.Store(true)
		hardClose(p.a)
		hardClose(p.b)
	})
}

// copy runs one direction; the last to finish closes up and calls done.
func (p *Pipe) copy(dst, src HalfCloser, dstShut, srcShut *atomic.Bool, counter *atomic.Int64, n *int64) {
	var err error
	*n, err = proxyCopy(dst, src, dstShut, srcShut, counter)
	if err != nil {
		p.abort(err)
	}
	if p.left.Add(-1) != 0 {
		return
	}
	if p.aborted.Load() {
		p.done(p.aToB, p.bToA, p.firstErr)
		return
	}
	// Both directions saw EOF and half-closed their destination. Close
	// frees the ends; on a libp2p stream it only releases resources.
	_ = p.a.Close()
	_ = p.b.Close()
	p.done(p.aToB, p.bToA, nil)
}

// proxyCopy copies src to dst until src reports EOF, then half-closes dst
// (setting dstShut first). srcShut tells a socket source whether its own
// write half has been closed. It is a named function so that goroutine
// dumps show what each bridge goroutine is doing.
func proxyCopy(dst, src HalfCloser, dstShut, srcShut *atomic.Bool, counter *atomic.Int64) (int64, error) {
	if rc := rawConnOf(src); rc != nil {
		return rawCopy(dst, src, rc, dstShut, srcShut, counter)
	}
	var bufs ladder
	defer bufs.release()
	out := newSink(dst, src, nil, counter)
	for {
		buf := bufs.buf()
		nr, rerr := src.Read(buf)
		if nr > 0 {
			if err := out.write(buf[:nr]); err != nil {
				return out.written, err
			}
		}
		if rerr == io.EOF {
			return out.written, closeWrite(dst, dstShut)
		}
		if rerr != nil {
			return out.written, fmt.Errorf("read: %w", rerr)
		}
		// buf has been written out: the next read may use another.
		bufs.next(nr)
	}
}

// ladder is the buffer a copy from a libp2p stream reads into: the small
// one, moving up to the mid and then the big one as reads fill it, and back
// to the small one when a read is small.
type ladder struct {
	held *[]byte // nil before the first read
	step int     // held's pool in steps
}

var steps = [...]*sync.Pool{&smallPool, &midPool, &bufPool}

func (l *ladder) buf() []byte {
	if l.held == nil {
		l.take(0)
	}
	return *l.held
}

// next picks the buffer for the read after one of n bytes.
func (l *ladder) next(n int) {
	switch {
	case n == len(*l.held) && l.step < len(steps)-1:
		l.take(l.step + 1)
	case n < smallSize && l.step > 0:
		l.take(0)
	}
}

func (l *ladder) take(step int) {
	l.release()
	l.held, l.step = steps[step].Get().(*[]byte), step
}

func (l *ladder) release() {
	if l.held != nil {
		steps[l.step].Put(l.held)
		l.held = nil
	}
}

// closeWrite passes a clean EOF on to dst, after setting shut.
func closeWrite(dst HalfCloser, shut *atomic.Bool) error {
	shut.Store(true)
	if err := dst.CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	return nil
}

// hardClose ends x without a clean close: a libp2p stream is reset, a TCP
// connection is closed with a RST.
func hardClose(x HalfCloser) {
	switch v := x.(type) {
	case resetter:
		_ = v.Reset()
		return
	case linger:
		_ = v.SetLinger(0)
	}
	_ = x.Close()
}
