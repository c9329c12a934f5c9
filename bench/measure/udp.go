package measure

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// The UDP load: one flow of datagrams echoed by a UDP target, with a
// window of them in flight.
const (
	UDPSize   = 1200 // bytes per datagram: under every path's MTU
	UDPWindow = 64   // datagrams in flight
	// UDPLostAfter is how long a window may go unanswered before its
	// datagrams count as lost and a new window is sent.
	UDPLostAfter = time.Second
)

// UDPEcho sends every datagram back to its sender until c is closed.
func UDPEcho(c *net.UDPConn) {
	buf := make([]byte, 1<<16)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		_, _ = c.WriteToUDPAddrPort(buf[:n], from)
	}
}

// UDPEchoes keeps UDPWindow datagrams in flight to addr for d and counts
// those that come back. A window that goes unanswered for UDPLostAfter
// counts as lost and is sent again; the first datagram, which opens the
// flow, is not timed.
func UDPEchoes(addr string, d time.Duration) (echoed, lost int, elapsed time.Duration, err error) {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return 0, 0, 0, err
	}
	c, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.Close()
	msg, buf := make([]byte, UDPSize), make([]byte, 2*UDPSize)
	var seq uint64
	send := func() error {
		seq++
		binary.BigEndian.PutUint64(msg, seq)
		_, err := c.Write(msg)
		return err
	}
	if err := send(); err != nil {
		return 0, 0, 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(buf); err != nil {
		return 0, 0, 0, fmt.Errorf("the first datagram did not come back: %w", err)
	}
	start := time.Now()
	inFlight := 0
	for time.Since(start) < d {
		for ; inFlight < UDPWindow; inFlight++ {
			if err := send(); err != nil {
				return echoed, lost, time.Since(start), err
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(UDPLostAfter))
		n, err := c.Read(buf)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			lost, inFlight = lost+inFlight, 0
		case err != nil:
			return echoed, lost, time.Since(start), err
		case n == UDPSize:
			echoed++
			inFlight--
		}
	}
	return echoed, lost, time.Since(start), nil
}
