package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/spec"
)

// framePair returns the daemon's and the client's ends of a pipe over a
// real Unix socket pair.
func framePair(t *testing.T) (*daemonPipe, *PipeConn) {
	t.Helper()
	ln, err := net.Listen("unix", sockPath(t))
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
	return &daemonPipe{frameConn: newFrameConn(sc, nil)}, &PipeConn{newFrameConn(cc, nil)}
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
		wg.Go(func() { d.Write([]byte("partial")); d.Reset(); d.finish(errors.New("reset")) })
		got, err := io.ReadAll(c)
		if !errors.Is(err, ErrPipeReset) || string(got) != "partial" {
			t.Fatalf("ReadAll = %q, %v; want the data, then ErrPipeReset", got, err)
		}
	})

	t.Run("reset after end of data", func(t *testing.T) {
		d, c := framePair(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { d.CloseWrite(); d.Reset(); d.finish(errors.New("reset")) })
		if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
			t.Fatalf("ReadAll = %q, %v", got, err)
		}
		if err := c.Wait(); !errors.Is(err, ErrPipeReset) {
			t.Fatalf("Wait = %v, want ErrPipeReset", err)
		}
	})

	// The peer's listener refused the stream: the client learns the cause,
	// as an error that wraps ErrPipeReset and the cause's sentinel.
	t.Run("refused by the peer", func(t *testing.T) {
		d, c := framePair(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		refused := fmt.Errorf("read: %w", &network.StreamError{ErrorCode: refusal.Code(refusal.Denied), Remote: true})
		wg.Go(func() { d.Reset(); d.finish(refused) })
		_, err := io.ReadAll(c)
		if !errors.Is(err, ErrPipeReset) || !errors.Is(err, node.ErrDenied) || Refusal(err) == nil || !strings.Contains(err.Error(), "--allow") {
			t.Fatalf("ReadAll = %v; want ErrPipeReset, node.ErrDenied and the reason", err)
		}
	})

	t.Run("client goes away", func(t *testing.T) {
		d, c := framePair(t)
		c.Write([]byte("half"))
		c.Close()
		got, err := io.ReadAll(d)
		if !errors.Is(err, ErrPipeReset) || string(got) != "half" {
			t.Fatalf("daemon ReadAll = %q, %v; want the data, then ErrPipeReset", got, err)
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
			if _, err := io.ReadAll(c); !errors.Is(err, ErrPipeReset) {
				t.Fatalf("ReadAll = %v, want ErrPipeReset", err)
			}
		})
	}
}

// FuzzPipeFrames feeds arbitrary bytes to the client's frame reader: it
// must not panic, must return no more data than it was given, and must
// either end cleanly (after an 'e') or report ErrPipeReset.
func FuzzPipeFrames(f *testing.F) {
	f.Add([]byte("d\x00\x00\x00\x03abce"))
	f.Add([]byte("d\x00\x00\x00\x03abced\x00\x00\x00\x00ec"))
	f.Add([]byte("d\xff\xff\xff\xffabc"))
	f.Add([]byte("ed"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := &PipeConn{newFrameConn(nil, bytes.NewReader(raw))}
		got, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, ErrPipeReset) {
			t.Fatalf("ReadAll error %v does not wrap ErrPipeReset", err)
		}
		if len(got) > len(raw) {
			t.Fatalf("read %d bytes of data from %d bytes of frames", len(got), len(raw))
		}
		if err == nil {
			if werr := c.Wait(); werr != nil && !errors.Is(werr, ErrPipeReset) {
				t.Fatalf("Wait error %v does not wrap ErrPipeReset", werr)
			}
		}
	})
}

// pipeSetup starts a node serving /x/echo from a TCP echo target, and a
// second node with an API server; it returns the second node, its client
// and the first node's full address.
func pipeSetup(t *testing.T) (*node.Node, *Server, *Client, string) {
	t.Helper()
	echo := testnet.Serve(t, testnet.Echo)

	remote, local := newNode(t), newNode(t)
	if _, err := remote.Listen(testContext(t), mustListen(t, spec.Request{Protocol: "/x/echo", Target: echo, AllowAll: true})); err != nil {
		t.Fatal(err)
	}
	p := sockPath(t)
	s := startServer(t, local, p)
	return local, s, NewClient(p), remote.Identity().Addresses[0]
}

func TestPipeThroughServer(t *testing.T) {
	n, s, c, remote := pipeSetup(t)
	ctx := testContext(t)

	t.Run("echo", func(t *testing.T) {
		p, err := c.Pipe(ctx, PipeRequest{Peer: remote, Protocol: "/x/echo"})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if _, err := p.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(p, got); err != nil || string(got) != "hello" {
			t.Fatalf("read back %q, %v", got, err)
		}
		if st := n.Streams(); len(st) != 1 || st[0].Kind != "pipe" || st[0].Protocol != "/x/echo" {
			t.Errorf("streams while the pipe is open = %+v", st)
		}
		if err := p.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if rest, err := io.ReadAll(p); err != nil || len(rest) != 0 {
			t.Fatalf("after CloseWrite: %q, %v", rest, err)
		}
		if err := p.Wait(); err != nil {
			t.Fatalf("Wait = %v", err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			req  PipeRequest
			want error
		}{
			{"no such protocol", PipeRequest{Peer: remote, Protocol: "/x/none"}, node.ErrNoListener},
			{"unreachable", PipeRequest{Peer: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/", testnet.FreePort(t)) + harness.NewPeerID(t), Protocol: "/x/echo"}, node.ErrUnreachable},
			{"bad protocol", PipeRequest{Peer: remote, Protocol: "echo"}, node.ErrUsage},
			{"self", PipeRequest{Peer: n.Host().ID().String(), Protocol: "/x/echo"}, node.ErrUsage},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p, err := c.Pipe(ctx, tc.req)
				if err == nil {
					p.Close()
				}
				if !errors.Is(err, tc.want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("Pipe = %v, want a one-line %v", err, tc.want)
				}
			})
		}
	})

	t.Run("needs the upgrade headers", func(t *testing.T) {
		body, _ := json.Marshal(PipeRequest{Peer: remote, Protocol: "/x/echo"})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://p2ptun/v0/pipe", bytes.NewReader(body))
		resp, err := rawClient(s.path).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb errorBody
		if resp.StatusCode != http.StatusBadRequest || json.NewDecoder(resp.Body).Decode(&eb) != nil || eb.Code != "usage" {
			t.Fatalf("status %s, body %+v; want 400 usage", resp.Status, eb)
		}
	})

	t.Run("server close ends the pipe", func(t *testing.T) {
		p, err := c.Pipe(ctx, PipeRequest{Peer: remote, Protocol: "/x/echo"})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if _, err := p.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(p, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatalf("Close with a pipe open: %v", err)
		}
		if _, err := io.ReadAll(p); !errors.Is(err, ErrPipeReset) {
			t.Fatalf("client read after server Close = %v, want ErrPipeReset", err)
		}
		if st := n.Streams(); len(st) != 0 {
			t.Errorf("streams after server Close = %+v", st)
		}
	})
}

// TestPipeClientDataBeforeSwitch checks that a client that does not wait
// for the 101 is cut off, and its stream reset, rather than having its
// early bytes dropped.
func TestPipeClientDataBeforeSwitch(t *testing.T) {
	n, s, _, remote := pipeSetup(t)
	conn, err := net.Dial("unix", s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body, _ := json.Marshal(PipeRequest{Peer: remote, Protocol: "/x/echo"})
	req, _ := http.NewRequest(http.MethodPost, "http://p2ptun/v0/pipe", bytes.NewReader(body))
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", PipeUpgrade)
	var raw bytes.Buffer
	req.Write(&raw)
	raw.WriteString("d\x00\x00\x00\x05early")
	if _, err := conn.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(conn); err != nil || len(got) != 0 {
		t.Fatalf("server answered %q (%v), want the connection closed unanswered", got, err)
	}
	if st := n.Streams(); len(st) != 0 {
		t.Errorf("streams after a refused pipe = %+v", st)
	}
}
