package main

import (
	"context"
	"fmt"
	"net"

	"github.com/p2ptun/p2ptun/bench/measure"
	"github.com/p2ptun/p2ptun/bench/report"
)

// The UDP rows: measure's UDP load (one flow of datagrams echoed, a
// window of them in flight), directly (the baseline) and through a UDP
// tunnel between two p2ptun daemons (over their TCP transport).

// measureUDP runs the UDP rows for cfg.Rounds rounds, interleaved.
func measureUDP(ctx context.Context, cfg config, logf func(string, ...any)) *report.UDPResults {
	res := &report.UDPResults{Size: measure.UDPSize, Window: measure.UDPWindow, Rows: []*report.UDPRow{
		{Key: "raw-udp", Name: "raw UDP loopback"}, {Key: "p2ptun-udp", Name: "p2ptun UDP"},
	}}
	target, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		res.Rows[0].Errors = append(res.Rows[0].Errors, err.Error())
		return res
	}
	echoing := make(chan struct{})
	go func() { measure.UDPEcho(target); close(echoing) }()
	defer func() { target.Close(); <-echoing }()
	var addrs [2]string // the row's UDP address, "" if it could not be set up
	addrs[0] = target.LocalAddr().String()
	// Two daemons over their TCP transport; the first datagram, which
	// opens the flow, is measure.UDPEchoes' to send.
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
			n, lost, elapsed, err := measure.UDPEchoes(addrs[i], cfg.Duration)
			r.Lost += lost
			if err != nil {
				r.Errors = append(r.Errors, fmt.Sprintf("round %d: %v", round+1, err))
				continue
			}
			rates[i] = float64(n) / elapsed.Seconds()
			r.Echoed = r.Echoed.Add(round, rates[i])
			r.MBps = r.MBps.Add(round, rates[i]*measure.UDPSize/1e6)
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
