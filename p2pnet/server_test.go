package p2pnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

func TestMain(m *testing.M) { harness.Main(m) }

// start starts s on a loopback port and closes it at cleanup.
func start(t *testing.T, s *Server) *Server {
	t.Helper()
	if s.ListenAddrs == nil {
		s.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// addr is s's loopback address, ending in /p2p/ID.
func addr(t *testing.T, s *Server) string {
	t.Helper()
	for _, a := range s.Addrs() {
		if strings.HasPrefix(a.String(), "/ip4/127.0.0.1/tcp/") {
			return a.String()
		}
	}
	t.Fatalf("no loopback address in %v", s.Addrs())
	return ""
}

// echo accepts on l and echoes each connection, until l closes; the
// returned channel yields each accepted connection. At cleanup it closes
// l, resets the connections still open and waits for its goroutines.
func echo(t *testing.T, l net.Listener) <-chan net.Conn {
	accepted := make(chan net.Conn, 16)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case accepted <- c:
			default: // the test does not look at them all
			}
			wg.Go(func() {
				_, _ = io.Copy(c, c)
				_ = c.Close()
			})
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.(*Conn).Reset()
		}
		mu.Unlock()
		wg.Wait()
	})
	return accepted
}

// listenEcho serves /x/echo on s with echo.
func listenEcho(t *testing.T, s *Server) (*Listener, <-chan net.Conn) {
	t.Helper()
	l, err := s.Listen("/x/echo")
	if err != nil {
		t.Fatal(err)
	}
	return l.(*Listener), echo(t, l)
}

// dialRefused dials a listener that refuses the client and returns the
// refusal: Dial's error when the reset arrives while Dial makes sure the
// peer took the protocol, else the first Read's.
func dialRefused(client *Server, peerAddr, proto string) error {
	c, err := client.Dial(context.Background(), peerAddr, proto)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Read(make([]byte, 1))
	return err
}

// pair is a client and a server whose Listen allows the client.
func pair(t *testing.T) (client, server *Server) {
	t.Helper()
	client = start(t, &Server{})
	server = start(t, &Server{Allow: []string{client.ID().String()}})
	return client, server
}

func TestDialListen(t *testing.T) {
	client, server := pair(t)
	l, accepted := listenEcho(t, server)
	c, err := client.Dial(context.Background(), addr(t, server), "/x/echo")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	harness.Echoes(t, c, "hello over libp2p\n")

	if got, ok := PeerOf(c); !ok || got != server.ID() {
		t.Errorf("PeerOf(dialed) = %s, %v; want %s", got, ok, server.ID())
	}
	sc := <-accepted
	if got, ok := PeerOf(sc); !ok || got != client.ID() {
		t.Errorf("PeerOf(accepted) = %s, %v; want %s", got, ok, client.ID())
	}
	if ra := sc.RemoteAddr().String(); !strings.HasPrefix(ra, "/ip4/127.0.0.1/tcp/") || !strings.HasSuffix(ra, "/p2p/"+client.ID().String()) {
		t.Errorf("accepted RemoteAddr = %s; want the client's loopback multiaddr ending in /p2p/%s", ra, client.ID())
	}
	if la := c.LocalAddr().(Addr); la.Peer != client.ID() || la.Protocol != "/x/echo" || la.Network() != "libp2p" {
		t.Errorf("dialed LocalAddr = %+v", la)
	}
	if la := l.Addr().String(); la != "/p2p/"+server.ID().String() {
		t.Errorf("listener Addr = %s", la)
	}

	// Half-close: the client closes its writing side, the echo still
	// comes back whole, then EOF.
	c2, err := client.Dial(context.Background(), server.ID().String(), "/x/echo")
	if err != nil {
		t.Fatalf("Dial by peer ID once connected: %v", err)
	}
	defer c2.Close()
	if _, err := io.WriteString(c2, "last words\n"); err != nil {
		t.Fatal(err)
	}
	if err := c2.(*Conn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(c2); err != nil || string(got) != "last words\n" {
		t.Errorf("after CloseWrite read %q, %v; want the echo then EOF", got, err)
	}
}

// A listener refuses a peer it does not allow with the daemon's code: the
// dialer's first Read says ErrDenied.
func TestListenRefusesPeerNotAllowed(t *testing.T) {
	client := start(t, &Server{})
	server := start(t, &Server{Allow: []string{harness.NewPeerID(t)}})
	l, _ := listenEcho(t, server)
	if err := dialRefused(client, addr(t, server), "/x/echo"); !errors.Is(err, ErrDenied) {
		t.Fatalf("Dial, then the first Read = %v; want ErrDenied", err)
	}

	// Listener.Allow lets the peer in from now on.
	if err := l.Allow(client.ID().String()); err != nil {
		t.Fatal(err)
	}
	c2, err := client.Dial(context.Background(), addr(t, server), "/x/echo")
	if err != nil {
		t.Fatal(err)
	}
	harness.Echoes(t, c2, "now allowed\n")
}

func TestErrors(t *testing.T) {
	client, server := pair(t)
	ctx := context.Background()
	if _, err := server.Listen("/x/echo"); err != nil {
		t.Fatal(err)
	}
	closedPort := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", testnet.FreePort(t), harness.NewPeerID(t))
	for _, tc := range []struct {
		name, peer, proto string
		want              error
	}{
		{"bad peer ID", "12D3KooWnot-a-peer", "/x/echo", ErrInvalid},
		{"unknown name", "laptop", "/x/echo", ErrInvalid},
		{"bad multiaddr", "/ip4/127.0.0.1/tcp", "/x/echo", ErrInvalid},
		{"bad protocol", server.ID().String(), "echo", ErrInvalid},
		{"reserved protocol", server.ID().String(), "/ipfs/ping/1.0.0", ErrInvalid},
		{"own peer ID", client.ID().String(), "/x/echo", ErrInvalid},
		{"unreachable", closedPort, "/x/echo", ErrUnreachable},
		{"no addresses", harness.NewPeerID(t), "/x/echo", ErrUnreachable},
		{"no listener", addr(t, server), "/x/other", ErrNoListener},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.Dial(ctx, tc.peer, tc.proto)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Dial(%q, %q) = %v, %v; want %v", tc.peer, tc.proto, c, err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
	t.Run("listen twice", func(t *testing.T) {
		if _, err := server.Listen("/x/echo"); !errors.Is(err, ErrListening) {
			t.Fatalf("second Listen = %v; want ErrListening", err)
		}
	})
	t.Run("listen allowing nobody", func(t *testing.T) {
		s := start(t, &Server{})
		_, err := s.Listen("/x/echo")
		if !errors.Is(err, ErrNoAllowlist) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("Listen = %v; want ErrNoAllowlist, ErrInvalid", err)
		}
	})
	t.Run("bad allow", func(t *testing.T) {
		s := &Server{Allow: []string{"nobody"}, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}
		if err := s.Start(ctx); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Start = %v; want ErrInvalid", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close after a failed Start: %v", err)
		}
	})
	t.Run("bad listen address", func(t *testing.T) {
		s := &Server{ListenAddrs: []string{"127.0.0.1:0"}}
		if err := s.Start(ctx); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Start = %v; want ErrInvalid", err)
		}
	})
}

// Close ends everything: Accept returns net.ErrClosed, accepted and
// dialed connections are reset (not a clean EOF), and the Server refuses
// new work.
func TestClose(t *testing.T) {
	client, server := pair(t)
	l, err := server.Listen("/x/echo")
	if err != nil {
		t.Fatal(err)
	}
	type accept struct {
		c   net.Conn
		err error
	}
	accepts := make(chan accept, 1)
	go func() {
		c, err := l.Accept()
		accepts <- accept{c, err}
	}()
	c, err := client.Dial(context.Background(), addr(t, server), "/x/echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "x"); err != nil {
		t.Fatal(err)
	}
	a := <-accepts
	if a.err != nil {
		t.Fatal(a.err)
	}
	sc := a.c
	if _, err := io.ReadFull(sc, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	if err := server.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v; want net.ErrClosed", err)
	}
	if _, err := sc.Read(make([]byte, 1)); err == nil || err == io.EOF {
		t.Errorf("accepted conn's Read after Close = %v; want an error, not EOF", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
		t.Errorf("peer's Read after Close = %v; want a reset, not a clean EOF", err)
	}
	if _, err := server.Listen("/x/more"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Listen after Close = %v; want net.ErrClosed", err)
	}
	if _, err := server.Dial(context.Background(), client.ID().String(), "/x/echo"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close = %v; want net.ErrClosed", err)
	}
	if err := server.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	// Both Servers closed: none of their goroutines is left (goleak
	// retries until they have ended, the test's own included).
	goleak.VerifyNone(t)
}

// Closing a listener resets a stream waiting for Accept with the closing
// code, and stops the protocol; the Server goes on.
func TestListenerClose(t *testing.T) {
	client, server := pair(t)
	l, err := server.Listen("/x/echo")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(context.Background(), addr(t, server), "/x/echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrNoListener) {
		t.Errorf("Read of a stream never accepted, after the listener closed = %v; want ErrNoListener", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v; want net.ErrClosed", err)
	}
	if _, err := client.Dial(context.Background(), addr(t, server), "/x/echo"); !errors.Is(err, ErrNoListener) {
		t.Errorf("Dial after the listener closed = %v; want ErrNoListener", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The protocol is free again.
	l2, err := server.Listen("/x/echo")
	if err != nil {
		t.Fatalf("Listen after Close: %v", err)
	}
	echo(t, l2)
	c2, err := client.Dial(context.Background(), addr(t, server), "/x/echo")
	if err != nil {
		t.Fatal(err)
	}
	harness.Echoes(t, c2, "again\n")
}

// Dir is a p2ptun home: the key is created as `p2ptun init` does and kept
// across runs, the home is locked while the Server runs, and its [peers]
// names and [access] lists apply.
func TestHome(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	first := start(t, &Server{Dir: dir})
	id := first.ID()
	if _, err := os.Stat(filepath.Join(dir, config.ConfigFile)); err != nil {
		t.Errorf("no default config beside the new key: %v", err)
	}
	second := &Server{Dir: dir, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}
	if err := second.Start(context.Background()); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Server on the same Dir: %v; want ErrLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := start(t, &Server{Dir: dir})
	if again.ID() != id {
		t.Errorf("restarted with ID %s; want the saved %s", again.ID(), id)
	}
	_ = again.Close()

	// [peers] names in Allow and Dial; [access] deny refuses node-wide.
	client := start(t, &Server{})
	banned := start(t, &Server{})
	harness.WriteConfig(t, dir, fmt.Sprintf("[peers]\nfriend = %q\n\n[access]\ndeny = [%q]\n", client.ID(), banned.ID()))
	server := start(t, &Server{Dir: dir, Allow: []string{"friend"}})
	listenEcho(t, server)
	c, err := client.Dial(context.Background(), addr(t, server), "/x/echo")
	if err != nil {
		t.Fatal(err)
	}
	harness.Echoes(t, c, "by name\n")
	_ = c.Close()
	if _, err := banned.Dial(context.Background(), addr(t, server), "/x/echo"); !errors.Is(err, ErrDenied) {
		t.Errorf("Dial from a peer [access] denies = %v; want ErrDenied", err)
	}
}

// The Server's peer is written like the CLI's: Peers gives addresses that
// a later Dial by bare ID uses.
func TestPeers(t *testing.T) {
	_, server := pair(t)
	l, _ := listenEcho(t, server)
	client := start(t, &Server{Peers: []string{addr(t, server)}})
	// server allows the pair's client, not this one: add it.
	if err := l.Allow(client.ID().String()); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(context.Background(), server.ID().String(), "/x/echo")
	if err != nil {
		t.Fatalf("Dial by bare ID with Peers: %v", err)
	}
	r := bufio.NewReader(c)
	if _, err := io.WriteString(c, "known\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "known\n" {
		t.Errorf("echo = %q, %v", line, err)
	}
	_ = c.Close()
	if err := client.Connect(context.Background(), server.ID().String()); err != nil {
		t.Errorf("Connect: %v", err)
	}
	if _, err := peer.Decode(client.ID().String()); err != nil {
		t.Error(err)
	}
}

// A listener's per-peer rate is the daemon's, from Dir's [limits]: a
// named peer over named_peer_stream_rate is refused with ErrRateLimited.
func TestRateLimited(t *testing.T) {
	client := start(t, &Server{})
	dir := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	harness.WriteConfig(t, dir, "[limits]\nnamed_peer_stream_rate = 0.01\nnamed_peer_stream_burst = 1\n")
	server := start(t, &Server{Dir: dir, Allow: []string{client.ID().String()}})
	listenEcho(t, server)
	c, err := client.Dial(context.Background(), addr(t, server), "/x/echo")
	if err != nil {
		t.Fatal(err)
	}
	harness.Echoes(t, c, "the burst's one stream\n")
	_ = c.Close()
	if err := dialRefused(client, addr(t, server), "/x/echo"); !errors.Is(err, ErrRateLimited) {
		t.Errorf("Dial past the rate, then the first Read = %v; want ErrRateLimited", err)
	}
}
