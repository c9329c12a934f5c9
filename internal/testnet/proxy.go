package testnet

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// Proxied is what a target behind a PROXY header was told about one
// connection, read with go-proxyproto's own reader.
type Proxied struct {
	Header *proxyproto.Header
	Err    error  // reading the header
	Data   []byte // what followed the header, up to EOF (echoed back)
}

// ServeProxied is Serve with a target that expects a PROXY header (v1 or
// v2): it reads it, echoes what follows until EOF, half-closes, and then
// reports the connection on the returned channel (which holds 16).
func ServeProxied(t testing.TB) (string, <-chan Proxied) {
	t.Helper()
	got := make(chan Proxied, 16)
	addr := Serve(t, func(c *net.TCPConn) {
		r := bufio.NewReader(c)
		// The header comes first or never: the deadline keeps a missing one
		// from holding the handler (and the test's cleanup).
		h, err := proxyproto.ReadHeaderTimeout(c, r, 30*time.Second)
		p := Proxied{Header: h, Err: err}
		if err == nil {
			p.Data, p.Err = io.ReadAll(io.TeeReader(r, c))
			c.CloseWrite()
		}
		got <- p
	})
	return addr, got
}

// EchoProxied sends msg on c, a connection that reaches a ServeProxied
// target (through a tunnel), checks that the target echoes it after a
// header, closes c, and returns the header the target read. It does not
// half-close: kubo's `ipfs p2p` ends both directions at the first EOF.
func EchoProxied(t testing.TB, c io.ReadWriteCloser, got <-chan Proxied, msg string) *proxyproto.Header {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, len(msg))
	if _, err := io.ReadFull(c, echo); err != nil || string(echo) != msg {
		t.Fatalf("echo %q, %v; want %q", echo, err, msg)
	}
	c.Close()
	select {
	case p := <-got:
		if p.Err != nil || string(p.Data) != msg {
			t.Fatalf("target read header %+v, then %q, err %v; want a header, then %q", p.Header, p.Data, p.Err, msg)
		}
		return p.Header
	case <-time.After(30 * time.Second):
		t.Fatal("the target reported no connection")
	}
	return nil
}
