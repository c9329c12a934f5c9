package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/p2ptun/p2ptun/bench/report"
)

// The UDP rows: one flow of datagrams echoed by a UDP target, with a
// window of them in flight, directly (the baseline) and through a UDP
// tunnel between two p2ptun daemons (over their TCP transport).
const (
	udpSize   = 1200 // bytes per datagram: under every path's MTU
	udpWindow = 64   // datagrams in flight
	// udpLostAfter is how long a window may go unanswered before its
	// datagrams count as lost and a new window is sent.
	udpLostAfter = time.Second
)

// measureUDP runs the UDP rows for cfg.Rounds rounds, interleaved.
func measureUDP(ctx context.Context, cfg config, logf func(string, ...any)) *report.UDPResults {
	res := &report.UDPResults{Size: udpSize, Window: udpWindow, Rows: []*report.UDPRow{
		{Key: "raw-udp", Name: "raw UDP loopback"}, {Key: "p2ptun-udp", Name: "p2ptun UDP"},
	}}
	target, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		res.Rows[0].Errors = append(res.Rows[0].Errors, err.Error())
		return res
	}
	echoing := make(chan struct{})
	go func() { udpEcho(target); close(echoing) }()
	defer func() { target.Close(); <-echoing }()
	var addrs [2]string // the row's UDP address, "" if it could not be set up
	addrs[0] = target.LocalAddr().String()
	// Two daemons over their TCP transport; the first datagram, which
	// opens the flow, is udpEchoes' to send.
	start := p2ptunTunnel("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0")
	tunnel, err := start(ctx, cfg, dest{Addr: "/ip4/127.0.0.1/udp/" + fmt.Sprint(target.LocalAddr().(*net.UDPAddr).Port),
		Ready: func(string) error { return nil }})
	if err != nil {
		res.Rows[1].Errors = append(res.Rows[1].Errors, err.Error())
	} else {
		defer tunnel.Close()
		addrs[1] = tunnel.Addr
	}
	for round := range cfg.Rounds {
		logf("round %d/%d: UDP datagrams", round+1, cfg.Rounds)
		var rates [2]float64
		for i, r := range res.Rows {
			if addrs[i] == "" || ctx.Err() != nil {
				continue
			}
			n, lost, elapsed, err := udpEchoes(addrs[i], cfg.Duration)
			r.Lost += lost
			if err != nil {
				r.Errors = append(r.Errors, fmt.Sprintf("round %d: %v", round+1, err))
				continue
			}
			rates[i] = float64(n) / elapsed.Seconds()
			r.Echoed = r.Echoed.Add(round, rates[i])
			r.MBps = r.MBps.Add(round, rates[i]*udpSize/1e6)
		}
		if rates[0] > 0 && rates[1] > 0 {
			res.Ratio = res.Ratio.Add(round, rates[1]/rates[0])
		}
	}
	for _, s := range []*report.Stat{res.Ratio, res.Rows[0].Echoed, res.Rows[0].MBps, res.Rows[1].Echoed, res.Rows[1].MBps} {
		if s != nil {
			s.Summarize()
		}
	}
	return res
}

// udpEcho sends every datagram back to its sender until c is closed.
func udpEcho(c *net.UDPConn) {
	buf := make([]byte, 1<<16)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		_, _ = c.WriteToUDPAddrPort(buf[:n], from)
	}
}

// udpEchoes keeps udpWindow datagrams in flight to addr for d and counts
// those that come back. A window that goes unanswered for udpLostAfter
// counts as lost and is sent again; the first datagram, which opens the
// flow, is not timed.
func udpEchoes(addr string, d time.Duration) (echoed, lost int, elapsed time.Duration, err error) {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return 0, 0, 0, err
	}
	c, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.Close()
	msg, buf := make([]byte, udpSize), make([]byte, 2*udpSize)
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
		for ; inFlight < udpWindow; inFlight++ {
			if err := send(); err != nil {
				return echoed, lost, time.Since(start), err
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(udpLostAfter))
		n, err := c.Read(buf)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			lost, inFlight = lost+inFlight, 0
		case err != nil:
			return echoed, lost, time.Since(start), err
		case n == udpSize:
			echoed++
			inFlight--
		}
	}
	return echoed, lost, time.Since(start), nil
}
