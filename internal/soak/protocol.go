package soak

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"time"
)

// The checked exchange. The client sends a header, then both sides move
// bytes drawn from a ChaCha8 stream keyed by the connection's seed and
// direction, in the order its Mode says:
//
//	header   "SOK1" mode 0 0 0 seed(8) up(8) down(8), big-endian
//	upload   up bytes, client → server, then the client's write half closes
//	download down bytes, server → client, then the SHA-256 of those bytes,
//	         then the server's write half closes
//
// Each side compares what it reads with the stream it expects byte by byte
// (a mismatch names the offset) and hashes it; the server reports the
// upload's hash back to the process through Server.Expect, since it cannot
// always send it in-band (in ServerFirst it has already closed its write
// half when the upload arrives).

const (
	headerLen = 32
	sumLen    = sha256.Size
	chunk     = 32 << 10
)

var magic = [4]byte{'S', 'O', 'K', '1'}

// Mode is the order in which the two directions run and close.
type Mode uint8

const (
	// ClientFirst: the client uploads and half-closes; the server reads
	// to EOF, then downloads and closes. The reply flows after the
	// client's half-close.
	ClientFirst Mode = iota
	// ServerFirst: the server downloads and half-closes first; the client
	// reads to EOF, then uploads and half-closes. The upload flows after
	// the server's half-close.
	ServerFirst
	// Concurrent: both directions stream at once.
	Concurrent

	numModes = 3
)

func (m Mode) String() string {
	switch m {
	case ClientFirst:
		return "client-first"
	case ServerFirst:
		return "server-first"
	case Concurrent:
		return "concurrent"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Spec is one connection's exchange. It is a pure function of the seed
// (SpecFor), so a failing seed can be replayed.
type Spec struct {
	Seed     uint64
	Mode     Mode
	Up, Down int64 // bytes client → server and server → client
}

func (s Spec) String() string {
	return fmt.Sprintf("conn seed=%#x %s up=%d down=%d", s.Seed, s.Mode, s.Up, s.Down)
}

// DefaultMaxSize caps one direction of one connection in SpecFor.
const DefaultMaxSize = 4 << 20

// SpecFor derives a connection's mode and sizes from its seed: each
// direction is empty one time in ten, at most 1 KiB a third of the time,
// at most 64 KiB another third, at most 1 MiB most of the rest, and up to
// maxSize (DefaultMaxSize if 0) three times in a hundred.
func SpecFor(seed uint64, maxSize int64) Spec {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	r := rand.New(rand.NewPCG(seed, 0x736f616b))
	size := func() int64 {
		var n int64
		switch p := r.IntN(100); {
		case p < 10:
			n = 0
		case p < 45:
			n = 1 + r.Int64N(1<<10)
		case p < 80:
			n = 1<<10 + r.Int64N(63<<10)
		case p < 97:
			n = 64<<10 + r.Int64N(960<<10)
		default:
			n = 1<<20 + r.Int64N(max(maxSize-1<<20, 1))
		}
		if n > maxSize {
			n = r.Int64N(maxSize + 1)
		}
		return n
	}
	m := Mode(r.IntN(numModes))
	return Spec{Seed: seed, Mode: m, Up: size(), Down: size()}
}

// content returns the byte stream for one direction of a connection.
func content(seed uint64, dir byte) *rand.ChaCha8 {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	key[8] = dir
	return rand.NewChaCha8(key)
}

const (
	dirUp   = 'u'
	dirDown = 'd'
	dirEcho = 'e'
)

func (s Spec) header() []byte {
	h := make([]byte, headerLen)
	copy(h, magic[:])
	h[4] = byte(s.Mode)
	binary.BigEndian.PutUint64(h[8:], s.Seed)
	binary.BigEndian.PutUint64(h[16:], uint64(s.Up))
	binary.BigEndian.PutUint64(h[24:], uint64(s.Down))
	return h
}

func parseHeader(h []byte) (Spec, error) {
	if !bytes.Equal(h[:4], magic[:]) || h[5]|h[6]|h[7] != 0 {
		return Spec{}, fmt.Errorf("bad header %x", h)
	}
	s := Spec{
		Mode: Mode(h[4]),
		Seed: binary.BigEndian.Uint64(h[8:]),
		Up:   int64(binary.BigEndian.Uint64(h[16:])),
		Down: int64(binary.BigEndian.Uint64(h[24:])),
	}
	if s.Mode >= numModes || s.Up < 0 || s.Down < 0 {
		return Spec{}, fmt.Errorf("bad header %x", h)
	}
	return s, nil
}

// DefaultIdle is how long one read or write may make no progress before
// the exchange fails as stalled.
const DefaultIdle = time.Minute

// conn wraps a connection so that each read and write has its own
// deadline (a stall fails, a slow machine does not) and ctx aborts it.
type conn struct {
	c    net.Conn
	ctx  context.Context
	idle time.Duration
}

type closeWriter interface{ CloseWrite() error }

var _ closeWriter = (*net.TCPConn)(nil)

// watch makes ctx's end abort c's blocked reads and writes; call the
// returned stop when done with c.
func watch(ctx context.Context, c net.Conn, idle time.Duration) (*conn, func() bool) {
	if idle <= 0 {
		idle = DefaultIdle
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return &conn{c: c, ctx: ctx, idle: idle}, stop
}

func (c *conn) Read(p []byte) (int, error) {
	if err := c.c.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.c.Read(p)
	return n, c.explain(err)
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.c.SetWriteDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.c.Write(p)
	return n, c.explain(err)
}

func (c *conn) explain(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, io.EOF) {
		return err // unwrapped: io.Reader callers compare with ==
	}
	if cerr := c.ctx.Err(); cerr != nil && err != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("stalled: no progress for %v: %w", c.idle, err)
	}
	return err
}

// both runs a on this goroutine and b on another, over c. When either
// fails, the other is aborted so that it does not wait for a peer that
// has given up.
func both(c *conn, a, b func(*conn) error) (aerr, berr error) {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	sc, stop := watch(ctx, c.c, c.idle)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		err := b(sc)
		if err != nil {
			cancel()
		}
		errc <- err
	}()
	aerr = a(sc)
	if aerr != nil {
		cancel()
	}
	return aerr, <-errc
}

func (c *conn) closeWrite() error {
	cw, ok := c.c.(closeWriter)
	if !ok {
		return fmt.Errorf("%T cannot half-close", c.c)
	}
	return cw.CloseWrite()
}

// send writes n bytes of src to w and returns their SHA-256.
func send(w io.Writer, src *rand.ChaCha8, n int64) ([sumLen]byte, error) {
	h := sha256.New()
	buf := make([]byte, min(n, chunk))
	var off int64
	for off < n {
		b := buf[:min(n-off, int64(len(buf)))]
		_, _ = src.Read(b)
		h.Write(b)
		if _, err := w.Write(b); err != nil {
			return [sumLen]byte{}, fmt.Errorf("at offset %d of %d: %w", off, n, err)
		}
		off += int64(len(b))
	}
	return [sumLen]byte(h.Sum(nil)), nil
}

// verifier checks bytes against the stream they should equal.
type verifier struct {
	what  string // "upload", "download", "echo"
	want  *rand.ChaCha8
	total int64
	off   int64
	h     hash.Hash
	exp   []byte
}

func newVerifier(what string, want *rand.ChaCha8, total int64) *verifier {
	return &verifier{what: what, want: want, total: total, h: sha256.New()}
}

// Write compares p with the next len(p) expected bytes.
func (v *verifier) Write(p []byte) (int, error) {
	if int64(len(p)) > v.total-v.off {
		return 0, fmt.Errorf("%s has more than the %d bytes expected: %d extra at offset %d", v.what, v.total, int64(len(p))-(v.total-v.off), v.total)
	}
	if cap(v.exp) < len(p) {
		v.exp = make([]byte, len(p))
	}
	exp := v.exp[:len(p)]
	_, _ = v.want.Read(exp)
	if !bytes.Equal(p, exp) {
		i := 0
		for p[i] == exp[i] {
			i++
		}
		return i, fmt.Errorf("%s byte at offset %d of %d is %#02x, want %#02x", v.what, v.off+int64(i), v.total, p[i], exp[i])
	}
	v.h.Write(p)
	v.off += int64(len(p))
	return len(p), nil
}

func (v *verifier) sum() [sumLen]byte { return [sumLen]byte(v.h.Sum(nil)) }

// recv reads exactly v.total bytes from r into v.
func recv(r io.Reader, v *verifier) error {
	buf := make([]byte, min(max(v.total, 1), chunk))
	for v.off < v.total {
		n, err := r.Read(buf[:min(v.total-v.off, int64(len(buf)))])
		if n > 0 {
			if _, werr := v.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return fmt.Errorf("%s ended at offset %d of %d: %d bytes missing", v.what, v.off, v.total, v.total-v.off)
		}
		if err != nil {
			return fmt.Errorf("%s at offset %d of %d: %w", v.what, v.off, v.total, err)
		}
	}
	return nil
}

// expectEOF reads once more and fails unless the peer has half-closed.
func expectEOF(r io.Reader, after string) error {
	var b [64]byte
	n, err := r.Read(b[:])
	switch {
	case n > 0:
		return fmt.Errorf("%d unexpected bytes after the %s (%x…)", n, after, b[:n])
	case err == io.EOF:
		return nil
	case err == nil:
		return fmt.Errorf("empty read after the %s, want EOF", after)
	default:
		return fmt.Errorf("after the %s, want EOF: %w", after, err)
	}
}

// Transfer is what one exchange moved and checked.
type Transfer struct {
	Up, Down int64        // bytes sent and bytes received and verified
	UpSum    [sumLen]byte // SHA-256 of the upload as sent
}

// Exchange runs the client side of sp on c and verifies every downloaded
// byte and the download's SHA-256. It does not close c. Any error names
// sp (seed, mode and sizes) and, for a wrong or missing byte, its offset.
// A read or write that makes no progress for idle (DefaultIdle if 0)
// fails; ctx's end aborts the exchange.
func Exchange(ctx context.Context, c net.Conn, sp Spec, idle time.Duration) (Transfer, error) {
	cc, stop := watch(ctx, c, idle)
	defer stop()
	tr, err := exchange(cc, sp)
	if err != nil {
		return tr, fmt.Errorf("%s: %w", sp, err)
	}
	return tr, nil
}

func exchange(c *conn, sp Spec) (Transfer, error) {
	var tr Transfer
	if _, err := c.Write(sp.header()); err != nil {
		return tr, fmt.Errorf("sending header: %w", err)
	}
	upload := func(c *conn) error {
		sum, err := send(c, content(sp.Seed, dirUp), sp.Up)
		if err != nil {
			return fmt.Errorf("sending upload %w", err)
		}
		tr.UpSum, tr.Up = sum, sp.Up
		if err := c.closeWrite(); err != nil {
			return fmt.Errorf("half-closing after the upload: %w", err)
		}
		return nil
	}
	download := func(c *conn) error {
		v := newVerifier("download", content(sp.Seed, dirDown), sp.Down)
		if err := recv(c, v); err != nil {
			return err
		}
		tr.Down = v.off
		var got [sumLen]byte
		if _, err := io.ReadFull(c, got[:]); err != nil {
			return fmt.Errorf("reading the download's SHA-256 after %d bytes: %w", v.off, err)
		}
		if want := v.sum(); got != want {
			return fmt.Errorf("download SHA-256: server sent %x, received bytes hash to %x", got, want)
		}
		return expectEOF(c, "download's SHA-256")
	}
	switch sp.Mode {
	case ClientFirst:
		if err := upload(c); err != nil {
			return tr, err
		}
		return tr, download(c)
	case ServerFirst:
		if err := download(c); err != nil {
			return tr, err
		}
		return tr, upload(c)
	default:
		derr, uerr := both(c, download, upload)
		if derr != nil {
			return tr, derr
		}
		return tr, uerr
	}
}

// serve runs the server side of one exchange whose header has been read
// and matched: it verifies the upload and sends the download, in sp's
// order, and returns the upload's SHA-256.
func serve(c *conn, sp Spec) ([sumLen]byte, error) {
	var upSum [sumLen]byte
	upload := func(c *conn) error {
		v := newVerifier("upload", content(sp.Seed, dirUp), sp.Up)
		if err := recv(c, v); err != nil {
			return err
		}
		if err := expectEOF(c, "upload"); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		upSum = v.sum()
		return nil
	}
	download := func(c *conn) error {
		sum, err := send(c, content(sp.Seed, dirDown), sp.Down)
		if err != nil {
			return fmt.Errorf("sending download %w", err)
		}
		if _, err := c.Write(sum[:]); err != nil {
			return fmt.Errorf("sending the download's SHA-256: %w", err)
		}
		if err := c.closeWrite(); err != nil {
			return fmt.Errorf("half-closing after the download: %w", err)
		}
		return nil
	}
	switch sp.Mode {
	case ClientFirst:
		if err := upload(c); err != nil {
			return upSum, err
		}
		return upSum, download(c)
	case ServerFirst:
		if err := download(c); err != nil {
			return upSum, err
		}
		return upSum, upload(c)
	default:
		uerr, derr := both(c, upload, download)
		if uerr != nil {
			return upSum, uerr
		}
		return upSum, derr
	}
}
