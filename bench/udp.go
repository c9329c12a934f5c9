package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"text/tabwriter"
	"time"
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

// UDPResults is the UDP section of results.json.
type UDPResults struct {
	Size   int       `json:"size"`   // bytes per datagram
	Window int       `json:"window"` // datagrams in flight
	Rows   []*UDPRow `json:"rows"`
	// Ratio is p2ptun's datagrams/s over the baseline's, round by round.
	Ratio *Stat `json:"ratio,omitempty"`
}

// UDPRow is one way of reaching the UDP target.
type UDPRow struct {
	Key    string   `json:"key"`
	Name   string   `json:"name"`
	Echoed *Stat    `json:"datagrams_per_s,omitempty"` // echoes a second: each datagram crossed both ways
	MBps   *Stat    `json:"mbps,omitempty"`            // 10^6 payload bytes a second, each way
	Lost   int      `json:"lost"`                      // datagrams sent that never came back
	Errors []string `json:"errors,omitempty"`
	addr   string
}

// measureUDP runs the UDP rows for cfg.Rounds rounds, interleaved.
func measureUDP(ctx context.Context, cfg config, logf func(string, ...any)) *UDPResults {
	res := &UDPResults{Size: udpSize, Window: udpWindow, Rows: []*UDPRow{
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
	res.Rows[0].addr = target.LocalAddr().String()
	// Two daemons over their TCP transport; the first datagram, which
	// opens the flow, is udpEchoes' to send.
	start := p2ptunTunnel("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0", func(string) error { return nil })
	tunnel, err := start(ctx, cfg, "/ip4/127.0.0.1/udp/"+fmt.Sprint(target.LocalAddr().(*net.UDPAddr).Port))
	if err != nil {
		res.Rows[1].Errors = append(res.Rows[1].Errors, err.Error())
	} else {
		defer tunnel.Close()
		res.Rows[1].addr = tunnel.Addr
	}
	for round := range cfg.Rounds {
		logf("round %d/%d: UDP datagrams", round+1, cfg.Rounds)
		var rates [2]float64
		for i, r := range res.Rows {
			if r.addr == "" || ctx.Err() != nil {
				continue
			}
			n, lost, elapsed, err := udpEchoes(r.addr, cfg.Duration)
			r.Lost += lost
			if err != nil {
				r.Errors = append(r.Errors, fmt.Sprintf("round %d: %v", round+1, err))
				continue
			}
			rates[i] = float64(n) / elapsed.Seconds()
			r.Echoed = r.Echoed.add(round, rates[i])
			r.MBps = r.MBps.add(round, rates[i]*udpSize/1e6)
		}
		if rates[0] > 0 && rates[1] > 0 {
			res.Ratio = res.Ratio.add(round, rates[1]/rates[0])
		}
	}
	for _, s := range []*Stat{res.Ratio, res.Rows[0].Echoed, res.Rows[0].MBps, res.Rows[1].Echoed, res.Rows[1].MBps} {
		if s != nil {
			s.summarize()
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

// formatUDP is the UDP table: medians, with the spread of the rounds.
func formatUDP(u *UDPResults) string {
	if u == nil {
		return ""
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "\nUDP: one flow, %d-byte datagrams echoed, %d in flight; medians (min–max over the rounds)\n", u.Size, u.Window)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\tdatagrams/s\tMB/s each way\tlost\t")
	spread := func(s *Stat, format string) string {
		if s == nil {
			return none
		}
		return fmt.Sprintf(format+" ("+format+"–"+format+")", s.Median, s.Min, s.Max)
	}
	for _, r := range u.Rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t\n", r.Name, spread(r.Echoed, "%.0f"), spread(r.MBps, "%.1f"), r.Lost)
	}
	fmt.Fprintf(w, "p2ptun UDP / raw UDP\t%s\t\t\t\n", spread(u.Ratio, "%.2f"))
	w.Flush()
	for _, r := range u.Rows {
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "%s: error: %s\n", r.Name, e)
		}
	}
	return b.String()
}
