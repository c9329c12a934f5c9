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
