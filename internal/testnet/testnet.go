package testnet

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Serve listens on a free loopback port and runs handle for each
// connection, closing it when handle returns. At cleanup it stops
// accepting and waits for every handler. It returns the host:port.
func Serve(t testing.TB, handle func(*net.TCPConn)) string {
	t.Helper()
	return ServeWith(t, &net.ListenConfig{}, handle)
}

// ServeWith is Serve with the listener made by lc, e.g. with a Control
// that sets socket options the accepted connections inherit.
func ServeWith(t testing.TB, lc *net.ListenConfig, handle func(*net.TCPConn)) string {
	t.Helper()
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c.(*net.TCPConn))
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// Echo copies what it reads back until EOF, then half-closes.
func Echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

// FreePort returns a loopback TCP port that nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Silent listens on a Unix socket at path, accepts every connection and
// never reads or answers, like a daemon whose control API is stuck. At
// cleanup it stops accepting and closes the connections.
func Silent(t testing.TB, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		conns []net.Conn // the accept loop's until wg.Wait returns
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
}

// ShortDir returns a new short temporary directory, removed at cleanup:
// Unix socket paths are limited to 108 bytes, which t.TempDir() can
// exceed.
func ShortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "p2pt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// SocketPath returns a path for a Unix socket in a ShortDir.
func SocketPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(ShortDir(t), "api.sock")
}
