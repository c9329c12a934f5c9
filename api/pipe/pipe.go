package pipe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2ptun/p2ptun/refusal"
)

// After the 101 Switching Protocols of POST /v0/pipe, both ends of the API
// connection speak frames. A Unix socket has no reset: a daemon that
// aborts a pipe and one that ends it cleanly would both look like end of
// file to the client, and so would a killed client to the daemon. The
// frames carry what the socket cannot:
//
//	'd' len:uint32be data   len bytes of the stream
//	'e'                     the sender's half-close: it sends no more data
//	'c'                     daemon only, after both 'e's: the stream ended
//	                        cleanly both ways; the daemon then closes
//	'r' len:uint8 cause     daemon only, in place of any other frame: the
//	                        peer refused the stream with this cause (see
//	                        package refusal); the daemon then closes
//
// A connection that ends anywhere else (no 'e' before the end, or no 'c'
// after the daemon's 'e') was aborted: the daemon resets the libp2p
// stream, the client reports a reset.
const (
	frameData    = 'd'
	frameEOF     = 'e'
	frameClean   = 'c'
	frameRefused = 'r'

	// maxFrameData bounds the data in each frame written; any length is
	// accepted on read.
	maxFrameData = 64 << 10
)

// Upgrade is the Upgrade header value that asks for a pipe.
const Upgrade = "p2ptun-pipe"

// ErrReset means the pipe ended without both directions finishing
// cleanly: the stream was reset (by the peer, `p2ptun stream close` or a
// failure), the daemon stopped, or the other end of the API connection
// went away.
var ErrReset = errors.New("pipe reset")

// frameConn reads and writes frames on an API connection.
type frameConn struct {
	conn net.Conn
	r    io.Reader // conn, or a reader holding bytes read with the handshake

	left  int  // data bytes left in the frame being read
	rdone bool // read the peer's 'e'

	wmu    sync.Mutex
	wdone  bool // wrote our 'e'
	header [5]byte
}

func newFrameConn(conn net.Conn, r io.Reader) frameConn {
	if r == nil {
		r = conn
	}
	return frameConn{conn: conn, r: r}
}

// Read returns the data of the peer's frames; io.EOF after its 'e'. A
// connection that ends before then fails with ErrReset.
func (f *frameConn) Read(p []byte) (int, error) {
	for f.left == 0 {
		if f.rdone {
			return 0, io.EOF
		}
		t, n, err := f.readHeader()
		if err != nil {
			return 0, err
		}
		switch t {
		case frameData:
			f.left = n
		case frameEOF:
			f.rdone = true
			return 0, io.EOF
		default:
			return 0, fmt.Errorf("%w: unexpected frame type %q on the pipe", ErrReset, t)
		}
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= n
	if err == io.EOF {
		err = fmt.Errorf("%w: the connection ended inside a frame", ErrReset)
	}
	return n, err
}

// readHeader reads a frame's type and, for a data frame, its length.
func (f *frameConn) readHeader() (byte, int, error) {
	var h [5]byte
	if _, err := io.ReadFull(f.r, h[:1]); err != nil {
		return 0, 0, cut(err)
	}
	if h[0] == frameRefused {
		return 0, 0, f.readRefusal()
	}
	if h[0] != frameData {
		return h[0], 0, nil
	}
	if _, err := io.ReadFull(f.r, h[1:]); err != nil {
		return 0, 0, cut(err)
	}
	return frameData, int(binary.BigEndian.Uint32(h[1:])), nil
}

// readRefusal reads the cause of an 'r' frame and returns the refusal,
// which wraps ErrReset and the cause's sentinel.
func (f *frameConn) readRefusal() error {
	var n [1]byte
	if _, err := io.ReadFull(f.r, n[:]); err != nil {
		return cut(err)
	}
	cause := make([]byte, n[0])
	if _, err := io.ReadFull(f.r, cause); err != nil {
		return cut(err)
	}
	if r := refusal.Parse(string(cause)); r != nil {
		return fmt.Errorf("%w: %w", ErrReset, r)
	}
	return fmt.Errorf("%w: the peer refused the stream (%q)", ErrReset, cause)
}

// cut names the end of the connection where a frame should have been.
func cut(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the connection closed before the pipe ended", ErrReset)
	}
	return fmt.Errorf("%w: %w", ErrReset, err)
}

// Write sends p as data frames.
func (f *frameConn) Write(p []byte) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.wdone {
		return 0, fmt.Errorf("pipe: write after CloseWrite: %w", net.ErrClosed)
	}
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFrameData)]
		f.header[0] = frameData
		binary.BigEndian.PutUint32(f.header[1:], uint32(len(chunk)))
		bufs := net.Buffers{f.header[:], chunk}
		n, err := bufs.WriteTo(f.conn)
		written += max(0, int(n)-len(f.header))
		if err != nil {
			return written, err
		}
		p = p[len(chunk):]
	}
	return written, nil
}

// CloseWrite sends 'e': the other end reads io.EOF once it has read the
// data before it. The connection stays open both ways.
func (f *frameConn) CloseWrite() error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.wdone {
		return nil
	}
	f.wdone = true
	_, err := f.conn.Write([]byte{frameEOF})
	return err
}

// handshakeWrite bounds the daemon's writes of the 101 response and of a
// pipe's last frame.
const handshakeWrite = 5 * time.Second

// Daemon is the daemon's end of a pipe, bridged to the libp2p stream
// by streams.Pipe, which calls Close after a clean end in both
// directions and Reset otherwise; Finish then ends the connection.
type Daemon struct {
	frameConn
	reset atomic.Bool // Reset was called
}

// Accept answers a pipe request on conn, hijacked from the server
// with nothing buffered, with 101 Switching Protocols and returns the
// daemon's end of the pipe. It fails if the client does not take the
// answer in time; the caller then closes conn.
func Accept(conn net.Conn) (*Daemon, error) {
	_ = conn.SetDeadline(time.Now().Add(handshakeWrite))
	_, err := conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + Upgrade + "\r\n\r\n"))
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		return nil, err
	}
	return &Daemon{frameConn: newFrameConn(conn, nil)}, nil
}

// Close tells the client that the stream ended cleanly, then closes the
// connection. Call it only after both directions ended with 'e'. A client
// that does not read the last byte in time gets a reset instead.
func (d *Daemon) Close() error {
	d.wmu.Lock()
	_ = d.conn.SetWriteDeadline(time.Now().Add(handshakeWrite))
	_, werr := d.conn.Write([]byte{frameClean})
	d.wmu.Unlock()
	return errors.Join(werr, d.conn.Close())
}

// Reset ends the bridge's reads and writes on the connection at once,
// without a final frame; Finish, called once the bridge has returned,
// tells the client why (a refusal) or just closes, which the client
// reports as a reset.
func (d *Daemon) Reset() error {
	// Not under wmu: a Write may hold it, blocked on a client that does
	// not read, until the deadline ends it.
	d.reset.Store(true)
	return d.conn.SetDeadline(time.Now())
}

// Finish ends the connection after the bridge returned err: after a Reset,
// it first sends an 'r' frame if the peer refused the stream.
func (d *Daemon) Finish(err error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if r := refusal.Of(err); d.reset.Load() && r != nil {
		_ = d.conn.SetWriteDeadline(time.Now().Add(handshakeWrite))
		_, _ = d.conn.Write(append([]byte{frameRefused, byte(len(r.Cause))}, r.Cause...))
	}
	_ = d.conn.Close()
}

// Refusal returns the refusal that a pipe's error carries (the peer's
// listener refused the stream: its cause wraps a node sentinel such as
// node.ErrDenied), or nil.
func Refusal(err error) error {
	if r := refusal.Of(err); r != nil {
		return r
	}
	return nil
}

// Conn is the client's end of a pipe that api.Client.Pipe opened: Write
// sends to the peer's stream, Read returns what it sends. It is safe to
// read and write from two goroutines.
type Conn struct{ frameConn }

// Open returns the client's end of a pipe on conn, whose 101 answer has
// been read with r (which may hold bytes read after it).
func Open(conn net.Conn, r io.Reader) *Conn { return &Conn{newFrameConn(conn, r)} }

// Read reads what the peer sends; io.EOF once it has half-closed, an
// error wrapping ErrReset if the stream was reset first.
func (p *Conn) Read(b []byte) (int, error) { return p.frameConn.Read(b) }

// Write sends b to the peer.
func (p *Conn) Write(b []byte) (int, error) { return p.frameConn.Write(b) }

// CloseWrite half-closes the stream: the peer reads end of file, and
// Read goes on returning what the peer sends.
func (p *Conn) CloseWrite() error { return p.frameConn.CloseWrite() }

// Wait returns, once Read has returned io.EOF, how the stream ended: nil
// when both directions ended cleanly, an error wrapping ErrReset when
// it was reset. It blocks until the daemon is done with the stream, which
// needs CloseWrite to have been called.
func (p *Conn) Wait() error {
	if !p.rdone || p.left != 0 {
		return errors.New("pipe: Wait before Read returned io.EOF")
	}
	t, _, err := p.readHeader()
	if err != nil {
		return err
	}
	if t != frameClean {
		return fmt.Errorf("%w: unexpected frame type %q after the end of the data", ErrReset, t)
	}
	return nil
}

// Close closes the connection. Before Wait returned nil, that aborts the
// pipe: the daemon resets the stream.
func (p *Conn) Close() error { return p.conn.Close() }
