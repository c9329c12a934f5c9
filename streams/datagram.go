package streams

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Datagram framing: a flow of datagrams rides a byte stream as frames,
// each a 2-byte big-endian length and that many bytes of one datagram.
// A frame never carries part of a datagram, and a datagram never spans
// frames: boundaries are kept, and a datagram that does not fit is
// dropped, never split.
const (
	FrameHeader = 2
	// MaxDatagram is the largest datagram a frame can carry (the largest
	// UDP payload over IPv4 is 65,507 bytes, so every one fits).
	MaxDatagram = 1<<16 - 1
)

// Why a Flow, or whoever feeds it, drops a datagram: the reason label of
// the drop counter.
const (
	DropTooLarge  = "too_large"  // larger than FlowConfig.Max
	DropTruncated = "truncated"  // a frame cut short by the end of the stream
	DropQueueFull = "queue_full" // the flow's queue was full (its stream is slower than its client)
)

// DropReasons lists the reasons above, for metrics.
func DropReasons() []string { return []string{DropTooLarge, DropTruncated, DropQueueFull} }

// PacketConn is one flow's datagrams: Read returns one datagram per call
// (truncated to len(p)), Write sends p as one datagram. A connected
// *net.UDPConn is one.
type PacketConn interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	// SetReadDeadline makes a blocked or later Read return an error that
	// is os.ErrDeadlineExceeded once t has passed; zero means none.
	SetReadDeadline(t time.Time) error
	Close() error
}

var _ PacketConn = (*net.UDPConn)(nil)

// FlowConfig says how a Flow frames its datagrams and when it ends.
type FlowConfig struct {
	// Max is the largest datagram carried either way; a larger one is
	// dropped. Zero, or more than MaxDatagram, means MaxDatagram.
	Max int
	// Idle ends the flow, as a clean end of data (Read returns io.EOF),
	// once no datagram has passed either way for this long. Zero: never.
	Idle time.Duration
	// Dropped, if set, is called with the reason of every datagram
	// dropped.
	Dropped func(reason string)
}

// Flow is a flow of datagrams seen as a byte stream of frames, so that a
// Pipe bridges it to a libp2p stream like any connection: Read yields
// one frame for each datagram received from its PacketConn, Write parses
// frames and sends each payload as one datagram. UDP has no half-close:
// CloseWrite, a clean end of the stream, ends the whole flow, so Read
// returns io.EOF too, and so does an idle flow. Flow owns its PacketConn;
// Close closes it. One goroutine may Read while another Writes.
type Flow struct {
	pc      PacketConn
	cfg     FlowConfig
	last    atomic.Int64 // Unix nanoseconds of the last datagram either way
	wclosed atomic.Bool  // CloseWrite was called

	rbuf []byte // the frame of the last datagram received; rbuf[roff:] is unread
	roff int

	wmu  sync.Mutex
	wbuf []byte // the start of a frame whose end has not been written yet
}

var _ HalfCloser = (*Flow)(nil)

// recvPool holds the buffers a Flow receives a datagram into: one larger
// than any datagram, so that a datagram over Max is seen whole, and
// dropped.
var recvPool = sync.Pool{New: func() any { b := make([]byte, MaxDatagram+1); return &b }}

// NewFlow returns the Flow of pc; it owns pc.
func NewFlow(pc PacketConn, cfg FlowConfig) *Flow {
	if cfg.Max <= 0 || cfg.Max > MaxDatagram {
		cfg.Max = MaxDatagram
	}
	f := &Flow{pc: pc, cfg: cfg}
	f.touch()
	return f
}

func (f *Flow) touch() { f.last.Store(time.Now().UnixNano()) }

func (f *Flow) drop(reason string) {
	if f.cfg.Dropped != nil {
		f.cfg.Dropped(reason)
	}
}

// Read reads the frames of the datagrams received, in order.
func (f *Flow) Read(p []byte) (int, error) {
	for f.roff >= len(f.rbuf) {
		if err := f.receive(); err != nil {
			return 0, err
		}
	}
	n := copy(p, f.rbuf[f.roff:])
	f.roff += n
	return n, nil
}

// receive waits for the next datagram that fits and frames it in rbuf.
func (f *Flow) receive() error {
	bp := recvPool.Get().(*[]byte)
	defer recvPool.Put(bp)
	buf := (*bp)[:f.cfg.Max+1]
	for {
		if f.wclosed.Load() {
			return io.EOF
		}
		var deadline time.Time
		if f.cfg.Idle > 0 {
			deadline = time.Unix(0, f.last.Load()).Add(f.cfg.Idle)
			if !time.Now().Before(deadline) {
				return io.EOF // idle
			}
		}
		if err := f.pc.SetReadDeadline(deadline); err != nil {
			return fmt.Errorf("flow: %w", err)
		}
		// After the deadline is set: a CloseWrite before it is seen here,
		// one after it moves the deadline and ends the Read.
		if f.wclosed.Load() {
			return io.EOF
		}
		n, err := f.pc.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue // idle, or CloseWrite: the loop says which
		}
		if err != nil {
			return err
		}
		f.touch()
		if n > f.cfg.Max {
			f.drop(DropTooLarge)
			continue
		}
		f.rbuf = binary.BigEndian.AppendUint16(f.rbuf[:0], uint16(n))
		f.rbuf = append(f.rbuf, buf[:n]...)
		f.roff = 0
		return nil
	}
}

// Write parses frames from p, which may hold any part of any number of
// them, and sends each whole frame's payload as one datagram. It consumes
// all of p unless sending fails.
func (f *Flow) Write(p []byte) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	total := len(p)
	for len(p) > 0 {
		if len(f.wbuf) == 0 && len(p) >= FrameHeader {
			// Whole frames straight from p, without copying.
			if end := FrameHeader + int(binary.BigEndian.Uint16(p)); len(p) >= end {
				if err := f.send(p[FrameHeader:end]); err != nil {
					return total - len(p), err
				}
				p = p[end:]
				continue
			}
		}
		need := FrameHeader - len(f.wbuf)
		if need <= 0 {
			need = FrameHeader + int(binary.BigEndian.Uint16(f.wbuf)) - len(f.wbuf)
		}
		take := min(need, len(p))
		f.wbuf = append(f.wbuf, p[:take]...)
		p = p[take:]
		if len(f.wbuf) >= FrameHeader && len(f.wbuf) == FrameHeader+int(binary.BigEndian.Uint16(f.wbuf)) {
			err := f.send(f.wbuf[FrameHeader:])
			f.wbuf = f.wbuf[:0]
			if err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

// send sends one datagram, unless it is over Max.
func (f *Flow) send(d []byte) error {
	if len(d) > f.cfg.Max {
		f.drop(DropTooLarge)
		return nil
	}
	f.touch()
	if _, err := f.pc.Write(d); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// CloseWrite ends the flow: the stream will carry no more datagrams, and
// UDP has no half-close. A frame begun and not finished is dropped. Read
// returns io.EOF from now on.
func (f *Flow) CloseWrite() error {
	f.wclosed.Store(true)
	f.wmu.Lock()
	if len(f.wbuf) > 0 {
		f.wbuf = f.wbuf[:0]
		f.drop(DropTruncated)
	}
	f.wmu.Unlock()
	// A deadline in the past ends a Read blocked now.
	return f.pc.SetReadDeadline(time.Unix(1, 0))
}

// Close closes the PacketConn.
func (f *Flow) Close() error { return f.pc.Close() }
