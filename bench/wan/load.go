//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/p2ptun/p2ptun/bench/measure"
	"github.com/p2ptun/p2ptun/bench/wan/link"
)

// iperfPort is iperf3's server port in B, on every address there.
const iperfPort = 5201

// iperf runs an iperf3 client in e's namespace against addr, with
// streams parallel streams, and returns what the server received, in
// Mbit/s. omit seconds at the start (slow start) are not counted.
func iperf(ctx context.Context, e link.End, addr string, streams int, secs, omit int) (float64, error) {
	r, err := measure.RunIperf3(ctx, addr, measure.Iperf3Test{Parallel: streams, Omit: omit, Start: e.Start}, time.Duration(secs)*time.Second)
	if err != nil {
		return 0, err
	}
	return r.MBps() * 8, nil
}

// firstByte connects from e's namespace to addr, sends one byte and reads
// its echo: the time from before the dial to the echo (timed on the
// thread already in the namespace, so entering it is not counted).
func firstByte(ctx context.Context, e link.End, addr string) (took time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = e.Do(func() error {
		start := time.Now()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			c.SetDeadline(dl)
		}
		if _, err := c.Write([]byte{'x'}); err != nil {
			return err
		}
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return fmt.Errorf("reading the echo: %w", err)
		}
		took = time.Since(start)
		return nil
	})
	return took, err
}

// echoServer echoes every connection to its listener, in B.
type echoServer struct {
	ln net.Listener
	wg sync.WaitGroup
	mu sync.Mutex
	cs map[net.Conn]bool
}

// startEcho listens on every address of e's namespace, on a free port.
func startEcho(e link.End) (*echoServer, error) {
	ln, err := e.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		return nil, err
	}
	s := &echoServer{ln: ln, cs: map[net.Conn]bool{}}
	s.wg.Go(s.serve)
	return s, nil
}

// Port is the echo server's port.
func (s *echoServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *echoServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.cs[c] = true
		s.mu.Unlock()
		s.wg.Go(func() {
			io.Copy(c, c)
			c.Close()
			s.mu.Lock()
			delete(s.cs, c)
			s.mu.Unlock()
		})
	}
}

// Close stops the server and its connections, and waits for them.
func (s *echoServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.cs {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// errSkip marks a path that cannot run here (a program not installed).
var errSkip = errors.New("skipped")
