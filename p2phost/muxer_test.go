package p2phost

import (
	"context"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/p2ptun/p2ptun/streams"
)

// A bulk write is sent in frames of up to streams.FrameSize rather than
// go-yamux's 64 KiB: the receiving stream hands a frame to one Read whole,
// so one Read returns what was written in one piece.
func TestYamuxSendsBigFrames(t *testing.T) {
	const proto = "/p2ptun-test/frames"
	const size = 192 << 10 // more than a 64 KiB frame, less than a fresh stream's window
	a, b := newHost(t, nil), newHost(t, nil)
	got := make(chan int, 1)
	b.host.SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		// One byte each way first, so that the protocol negotiation has
		// been read and the big write is a frame of its own.
		one := make([]byte, 1)
		if _, err := io.ReadFull(s, one); err != nil {
			t.Errorf("handler: read the first byte: %v", err)
			s.Reset()
			return
		}
		if _, err := s.Write(one); err != nil {
			t.Errorf("handler: echo the first byte: %v", err)
			s.Reset()
			return
		}
		buf := make([]byte, streams.FrameSize)
		n, err := s.Read(buf)
		if err != nil {
			t.Errorf("handler: read: %v", err)
		}
		got <- n
		_, _ = io.Copy(io.Discard, s)
	})
	bi := addrInfo(b)
	ctx := context.Background()
	if err := a.host.Connect(ctx, bi); err != nil {
		t.Fatal(err)
	}
	s, err := a.host.NewStream(ctx, bi.ID, proto)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	one := []byte{1}
	if _, err := s.Write(one); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s, one); err != nil {
		t.Fatalf("read the echoed byte: %v", err)
	}
	if _, err := s.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != size {
		t.Fatalf("the first read got %d bytes of a %d-byte write: it came in frames smaller than streams.FrameSize", n, size)
	}
}
