package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/api/pipe"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/spec"
)

// pipeSetup starts a node serving /x/echo from a TCP echo target, and a
// second node with an API server; it returns the second node, its client
// and the first node's full address.
func pipeSetup(t *testing.T) (*node.Node, *Server, *api.Client, string) {
	t.Helper()
	echo := testnet.Serve(t, testnet.Echo)

	remote, local := newNode(t), newNode(t)
	if _, err := remote.Listen(testContext(t), mustListen(t, spec.Request{Protocol: "/x/echo", Target: echo, AllowAll: true})); err != nil {
		t.Fatal(err)
	}
	p := testnet.SocketPath(t)
	s := startServer(t, local, p)
	return local, s, api.NewClient(p), remote.Identity().Addresses[0]
}

func TestPipeThroughServer(t *testing.T) {
	n, s, c, remote := pipeSetup(t)
	ctx := testContext(t)

	t.Run("echo", func(t *testing.T) {
		p, err := c.Pipe(ctx, api.PipeRequest{Peer: remote, Protocol: "/x/echo"})
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
			req  api.PipeRequest
			want error
		}{
			{"no such protocol", api.PipeRequest{Peer: remote, Protocol: "/x/none"}, node.ErrNoListener},
			{"unreachable", api.PipeRequest{Peer: "/ip4/127.0.0.1/tcp/" + deadPort(t) + "/p2p/" + randomPeer(t).String(), Protocol: "/x/echo"}, node.ErrUnreachable},
			{"bad protocol", api.PipeRequest{Peer: remote, Protocol: "echo"}, node.ErrUsage},
			{"self", api.PipeRequest{Peer: n.Host().ID().String(), Protocol: "/x/echo"}, node.ErrUsage},
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
		body, _ := json.Marshal(api.PipeRequest{Peer: remote, Protocol: "/x/echo"})
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
		p, err := c.Pipe(ctx, api.PipeRequest{Peer: remote, Protocol: "/x/echo"})
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
		if _, err := io.ReadAll(p); !errors.Is(err, pipe.ErrReset) {
			t.Fatalf("client read after server Close = %v, want pipe.ErrReset", err)
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
	body, _ := json.Marshal(api.PipeRequest{Peer: remote, Protocol: "/x/echo"})
	req, _ := http.NewRequest(http.MethodPost, "http://p2ptun/v0/pipe", bytes.NewReader(body))
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", pipe.Upgrade)
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
