package tunnel_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/tunnel"
)

// portForward is a whole kind of tunnel, to copy when writing a new one:
// it accepts TCP clients on a listener (how it accepts) and connects each
// to a TCP target (what it opens). forward opens a libp2p stream to a peer
// instead, and listen is handed streams by libp2p and dials its target;
// the lifecycle around them is the Tunnel's.
type portForward struct {
	ln     net.Listener
	target string
}

var _ tunnel.Kind = (*portForward)(nil)

// Bind has nothing to do: the listener was bound by its creator.
func (k *portForward) Bind() error { return nil }

// Accept runs the accept loop on a goroutine the tunnel owns.
func (k *portForward) Accept(t *tunnel.Tunnel) error {
	t.Go(func() {
		for {
			c, err := k.ln.Accept()
			if err != nil {
				return // unbound by StopAccepting or Close
			}
			if !t.Go(func() { k.serve(t, c.(*net.TCPConn)) }) {
				_ = c.Close()
				return
			}
		}
	})
	return nil
}

// serve hands one client to the lifecycle with the kind's Opener.
func (k *portForward) serve(t *tunnel.Tunnel, c *net.TCPConn) {
	served := t.Serve(time.Now(), func(ctx context.Context) (*tunnel.Link, error) {
		d := net.Dialer{Timeout: 5 * time.Second} // every dial has a timeout
		far, err := d.DialContext(ctx, "tcp", k.target)
		if err != nil {
			_ = c.Close()
			return nil, &tunnel.Failure{Cause: "target_dial", Err: err}
		}
		return &tunnel.Link{
			Remote: far.(*net.TCPConn), Local: c,
			Record: registry.Stream{OriginAddress: c.RemoteAddr().String(), TargetAddress: k.target},
			Attrs:  []any{"client", c.RemoteAddr().String()},
		}, nil
	})
	if !served {
		_ = c.Close() // the tunnel is closing
	}
}

func (k *portForward) StopAccepting() { _ = k.ln.Close() }
func (k *portForward) Close() error   { _ = k.ln.Close(); return nil }

func Example() {
	// An echo server stands in for the target.
	target, _ := net.Listen("tcp", "127.0.0.1:0")
	defer target.Close()
	go func() {
		c, err := target.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
	}()

	var reg registry.Streams
	ended := make(chan registry.StreamInfo, 1)
	reg.SetHooks(registry.Hooks{Closed: func(s registry.StreamInfo, _ error) { ended <- s }})

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	t, err := tunnel.New(tunnel.Config{Kind: "portforward", Protocol: "tcp", Streams: &reg, ListenerID: 1},
		&portForward{ln: ln, target: target.Addr().String()})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := t.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()

	c, _ := net.Dial("tcp", ln.Addr().String())
	_, _ = io.WriteString(c, "hello")
	_ = c.(*net.TCPConn).CloseWrite() // half-close: the reply still comes
	reply, _ := io.ReadAll(c)
	_ = c.Close()
	s := <-ended
	fmt.Printf("%s; listener %d, %s: %d bytes in, %d out\n", reply, s.ListenerID, s.Kind, s.BytesIn, s.BytesOut)
	// Output: hello; listener 1, portforward: 5 bytes in, 5 out
}
