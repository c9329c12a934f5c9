package streams

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// udpPair returns two loopback UDP sockets connected to each other.
func udpPair(t testing.TB) (a, b *net.UDPConn) {
	t.Helper()
	la, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	a = la
	b, err = net.DialUDP("udp", nil, la.LocalAddr().(*net.UDPAddr))
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	// a answers only b, as a connected socket.
	a.Close()
	if a, err = net.DialUDP("udp", la.LocalAddr().(*net.UDPAddr), b.LocalAddr().(*net.UDPAddr)); err != nil {
		b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func frame(d []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(d))), d...)
}

// drops counts a Flow's drops by reason.
type drops struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *drops) add(reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[reason]++
}

func (d *drops) get(reason string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[reason]
}

func readDatagram(t *testing.T, c *net.UDPConn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, MaxDatagram+1)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	return buf[:n]
}

func TestFlowKeepsBoundariesBothWays(t *testing.T) {
	near, far := udpPair(t)
	var dr drops
	f := NewFlow(near, FlowConfig{Dropped: dr.add})
	defer f.Close()
	datagrams := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{7}, 1000), []byte("last")}

	// Frames written in every way they may arrive from a stream: one
	// byte at a time, several in one write, a frame split across writes.
	var all []byte
	for _, d := range datagrams {
		all = append(all, frame(d)...)
	}
	for _, chunks := range [][]int{{1}, {len(all)}, {3, 1500}} {
		rest := all
		for i := 0; len(rest) > 0; i++ {
			n := min(chunks[i%len(chunks)], len(rest))
			if w, err := f.Write(rest[:n]); err != nil || w != n {
				t.Fatalf("Write = %d, %v; want %d", w, err, n)
			}
			rest = rest[n:]
		}
		for _, want := range datagrams {
			if got := readDatagram(t, far); !bytes.Equal(got, want) {
				t.Fatalf("chunks %v: datagram of %d bytes, want %d", chunks, len(got), len(want))
			}
		}
	}

	// Datagrams received come out as one frame each, in order, however
	// small the reads.
	for _, d := range datagrams {
		if _, err := far.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	one := make([]byte, 1)
	for len(got) < len(all) {
		n, err := f.Read(one)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, one[:n]...)
	}
	if !bytes.Equal(got, all) {
		t.Fatalf("frames read = %x, want %x", got, all)
	}
	if len(dr.n) != 0 {
		t.Errorf("drops = %v, want none", dr.n)
	}
}

func TestFlowDropsAndCountsWhatIsTooLarge(t *testing.T) {
	near, far := udpPair(t)
	var dr drops
	f := NewFlow(near, FlowConfig{Max: 100, Dropped: dr.add})
	defer f.Close()

	// Outbound: the frame of 101 bytes is dropped whole, the frames
	// around it go through.
	in := append(append(frame([]byte("before")), frame(bytes.Repeat([]byte{1}, 101))...), frame(bytes.Repeat([]byte{2}, 100))...)
	if _, err := f.Write(in); err != nil {
		t.Fatal(err)
	}
	if got := readDatagram(t, far); string(got) != "before" {
		t.Fatalf("first datagram %q", got)
	}
	if got := readDatagram(t, far); len(got) != 100 || got[0] != 2 {
		t.Fatalf("second datagram is %d bytes, want the 100-byte one (the 101-byte one dropped)", len(got))
	}
	if n := dr.get(DropTooLarge); n != 1 {
		t.Fatalf("too_large drops = %d after a 101-byte frame, want 1", n)
	}

	// Inbound: the 101-byte datagram is dropped, never split.
	for _, d := range [][]byte{bytes.Repeat([]byte{3}, 101), []byte("after")} {
		if _, err := far.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 200)
	n, err := f.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], frame([]byte("after"))) {
		t.Fatalf("Read = %x, %v; want the frame of \"after\"", buf[:n], err)
	}
	if n := dr.get(DropTooLarge); n != 2 {
		t.Fatalf("too_large drops = %d after a 101-byte datagram, want 2", n)
	}
}

func TestFlowEndsOnCloseWriteAndWhenIdle(t *testing.T) {
	t.Run("close write", func(t *testing.T) {
		near, _ := udpPair(t)
		var dr drops
		f := NewFlow(near, FlowConfig{Dropped: dr.add})
		defer f.Close()
		read := make(chan error, 1)
		go func() {
			_, err := f.Read(make([]byte, 10))
			read <- err
		}()
		if _, err := f.Write(frame([]byte("cut short"))[:5]); err != nil {
			t.Fatal(err)
		}
		if err := f.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if err := <-read; err != io.EOF {
			t.Fatalf("blocked Read after CloseWrite = %v, want io.EOF", err)
		}
		if n := dr.get(DropTruncated); n != 1 {
			t.Fatalf("truncated drops = %d, want 1 for the frame cut short", n)
		}
	})
	t.Run("idle", func(t *testing.T) {
		near, far := udpPair(t)
		f := NewFlow(near, FlowConfig{Idle: 50 * time.Millisecond})
		defer f.Close()
		if _, err := far.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		if n, err := f.Read(buf); err != nil || n != 3 {
			t.Fatalf("Read = %d, %v", n, err)
		}
		if _, err := f.Read(buf); err != io.EOF {
			t.Fatalf("Read of an idle flow = %v, want io.EOF", err)
		}
	})
}

// recorder is a PacketConn that records what is sent.
type recorder struct{ sent [][]byte }

func (r *recorder) Read([]byte) (int, error) { return 0, os.ErrDeadlineExceeded }
func (r *recorder) Write(p []byte) (int, error) {
	r.sent = append(r.sent, bytes.Clone(p))
	return len(p), nil
}
func (r *recorder) SetReadDeadline(time.Time) error { return nil }
func (r *recorder) Close() error                    { return nil }

// FuzzFlowWrite feeds any bytes, cut anywhere, to the frame decoder: it
// must send exactly the whole frames a straight decoding finds, the ones
// over Max dropped, and consume every byte.
func FuzzFlowWrite(f *testing.F) {
	f.Add(frame([]byte("hello")), uint8(1), uint8(16))
	f.Add(append(frame(nil), frame(bytes.Repeat([]byte{9}, 40))...), uint8(3), uint8(32))
	f.Add([]byte{0xff, 0xff, 1, 2, 3}, uint8(2), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, cut, max uint8) {
		var want [][]byte
		tooLarge := 0
		rest := in
		for len(rest) >= FrameHeader {
			end := FrameHeader + int(binary.BigEndian.Uint16(rest))
			if len(rest) < end {
				break
			}
			if d := rest[FrameHeader:end]; max == 0 || len(d) <= int(max) {
				want = append(want, d)
			} else {
				tooLarge++
			}
			rest = rest[end:]
		}
		var r recorder
		var dr drops
		fl := NewFlow(&r, FlowConfig{Max: int(max), Dropped: dr.add})
		step := int(cut) + 1
		for p := in; len(p) > 0; {
			n := min(step, len(p))
			if w, err := fl.Write(p[:n]); err != nil || w != n {
				t.Fatalf("Write = %d, %v; want %d", w, err, n)
			}
			p = p[n:]
		}
		if len(r.sent) != len(want) {
			t.Fatalf("sent %d datagrams, want %d", len(r.sent), len(want))
		}
		for i := range want {
			if !bytes.Equal(r.sent[i], want[i]) {
				t.Fatalf("datagram %d = %x, want %x", i, r.sent[i], want[i])
			}
		}
		if dr.get(DropTooLarge) != tooLarge {
			t.Fatalf("too_large drops = %d, want %d", dr.get(DropTooLarge), tooLarge)
		}
		_ = fl.CloseWrite()
		if truncated := len(rest) > 0; truncated != (dr.get(DropTruncated) == 1) {
			t.Fatalf("%d bytes left over, truncated drops = %d", len(rest), dr.get(DropTruncated))
		}
		if _, err := fl.Read(make([]byte, 4)); !errors.Is(err, io.EOF) {
			t.Fatalf("Read after CloseWrite = %v, want io.EOF", err)
		}
	})
}
