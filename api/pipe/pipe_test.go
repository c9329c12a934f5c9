package pipe

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/refusal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// framePair returns the daemon's and the client's ends of a pipe over a
// real Unix socket pair.
func framePair(t *testing.T) (*Daemon, *Conn) {
	t.Helper()
	ln, err := net.Listen("unix", testnet.SocketPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return &Daemon{frameConn: newFrameConn(sc, nil)}, &Conn{newFrameConn(cc, nil)}
}

func TestPipeFrames(t *testing.T) {
	data := make([]byte, 3*maxFrameData+17) // several frames, the last short
	rand.Read(data)

	t.Run("clean end", func(t *testing.T) {
		d, c := framePair(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			if n, err := d.Write(data); n != len(data) || err != nil {
				t.Errorf("Write = %d, %v", n, err)
			}
			if err := d.CloseWrite(); err != nil {
				t.Errorf("CloseWrite: %v", err)
			}
			// The daemon reads the client's end of data, then ends.
			if b, err := io.ReadAll(d); err != nil || string(b) != "client bytes" {
				t.Errorf("daemon read %q, %v", b, err)
			}
			if err := d.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadAll = %d bytes, %v; want the %d bytes sent", len(got), err, len(data))
		}
		// The client writes after the daemon's half-close.
		if _, err := c.Write([]byte("client bytes")); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("x")); err == nil {
			t.Error("Write after CloseWrite succeeded")
		}
		if err := c.Wait(); err != nil {
			t.Fatalf("Wait after a clean end = %v", err)
		}
	})

	t.Run("reset before end of data", func(t *testing.T) {
		d, c := framePair(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { d.Write([]byte("partial")); d.Reset(); d.Finish(errors.New("reset")) })
		got, err := io.ReadAll(c)
		if !errors.Is(err, ErrReset) || string(got) != "partial" {
			t.Fatalf("ReadAll = %q, %v; want the data, then ErrReset", got, err)
		}
	})

	t.Run("reset after end of data", func(t *testing.T) {
		d, c := framePair(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { d.CloseWrite(); d.Reset(); d.Finish(errors.New("reset")) })
		if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
			t.Fatalf("ReadAll = %q, %v", got, err)
		}
		if err := c.Wait(); !errors.Is(err, ErrReset) {
			t.Fatalf("Wait = %v, want ErrReset", err)
		}
	})

	// The peer's listener refused the stream: the client learns the cause,
	// as an error that wraps ErrReset and the cause's sentinel.
	t.Run("refused by the peer", func(t *testing.T) {
		d, c := framePair(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		refused := fmt.Errorf("read: %w", &network.StreamError{ErrorCode: refusal.Code(refusal.Denied), Remote: true})
		wg.Go(func() { d.Reset(); d.Finish(refused) })
		_, err := io.ReadAll(c)
		if !errors.Is(err, ErrReset) || !errors.Is(err, node.ErrDenied) || Refusal(err) == nil || !strings.Contains(err.Error(), "--allow") {
			t.Fatalf("ReadAll = %v; want ErrReset, node.ErrDenied and the reason", err)
		}
	})

	t.Run("client goes away", func(t *testing.T) {
		d, c := framePair(t)
		c.Write([]byte("half"))
		c.Close()
		got, err := io.ReadAll(d)
		if !errors.Is(err, ErrReset) || string(got) != "half" {
			t.Fatalf("daemon ReadAll = %q, %v; want the data, then ErrReset", got, err)
		}
	})

	for _, tc := range []struct{ name, raw string }{
		{"cut inside a frame", "d\x00\x00\x00\x0aabc"},
		{"cut inside a header", "d\x00\x00"},
		{"unknown frame type", "d\x00\x00\x00\x01ax"},
		{"clean before end of data", "c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, c := framePair(t)
			d.conn.Write([]byte(tc.raw))
			d.conn.Close()
			if _, err := io.ReadAll(c); !errors.Is(err, ErrReset) {
				t.Fatalf("ReadAll = %v, want ErrReset", err)
			}
		})
	}
}

// FuzzPipeFrames feeds arbitrary bytes to the client's frame reader: it
// must not panic, must return no more data than it was given, and must
// either end cleanly (after an 'e') or report ErrReset.
func FuzzPipeFrames(f *testing.F) {
	f.Add([]byte("d\x00\x00\x00\x03abce"))
	f.Add([]byte("d\x00\x00\x00\x03abced\x00\x00\x00\x00ec"))
	f.Add([]byte("d\xff\xff\xff\xffabc"))
	f.Add([]byte("ed"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := &Conn{newFrameConn(nil, bytes.NewReader(raw))}
		got, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, ErrReset) {
			t.Fatalf("ReadAll error %v does not wrap ErrReset", err)
		}
		if len(got) > len(raw) {
			t.Fatalf("read %d bytes of data from %d bytes of frames", len(got), len(raw))
		}
		if err == nil {
			if werr := c.Wait(); werr != nil && !errors.Is(werr, ErrReset) {
				t.Fatalf("Wait error %v does not wrap ErrReset", werr)
			}
		}
	})
}
