//go:build linux

package main

import (
	"fmt"

	"github.com/p2ptun/p2ptun/bench/report"
)

// chart is results.svg: per metric a panel of the links, each a group of
// its paths' median bars, drawn by bench/report's Chart.
func chart(res *Results) []byte {
	colors := map[string]string{}
	for _, p := range paths() {
		colors[p.Key] = p.Color
	}
	base := paths()[0].Key // the baseline the goals compare with: plain TCP
	// panel has a group per link, a bar per path; value is the bar's
	// value from a path's median of metric, ok false if it has none.
	panel := func(title, metric string, ratio bool, value func(l *LinkResult, median float64) (float64, bool)) report.Panel {
		p := report.Panel{Title: title}
		for _, l := range res.Links {
			g := report.Group{Label: l.Name}
			for _, pr := range l.Paths {
				b := report.Bar{Label: pr.Name, Color: colors[pr.Key]}
				if b.Color == "" {
					b.Color = "#9e9e9e" // a path no longer measured
				}
				m, measured := l.median(pr.Key, metric)
				if measured {
					b.Value, b.OK = value(l, m)
				}
				switch {
				case pr.Skip != "":
					b.OK, b.Note = false, "skipped"
				case !b.OK:
					b.Note = "not measured"
				case ratio && pr.Key != base:
					if t, ok := l.median(base, metric); ok && t > 0 {
						b.Suffix = fmt.Sprintf(" (%.2f× TCP)", m/t)
					}
				}
				g.Bars = append(g.Bars, b)
			}
			p.Groups = append(p.Groups, g)
		}
		return p
	}
	median := func(_ *LinkResult, m float64) (float64, bool) { return m, true }
	panels := []report.Panel{
		panel("iperf3 Mbit/s, 1 stream", "mbps_1", true, median),
		panel("iperf3 Mbit/s, 8 streams", "mbps_8", true, median),
		panel("warm first byte − RTT, ms (lower is better)", "warm_ms", false,
			func(l *LinkResult, m float64) (float64, bool) { return m - l.RTTms, true }),
		panel("cold connect+first byte, in RTTs (lower is better)", "cold_ms", false,
			func(l *LinkResult, m float64) (float64, bool) { return m / l.RTTms, l.RTTms > 0 }),
	}
	m := res.Machine
	return report.Chart(fmt.Sprintf("p2ptun %v across emulated WAN links", m.P2ptun["Version"]),
		fmt.Sprintf("%s, %d cores, Linux %s; TCP congestion control %s; medians of %d interleaved rounds; load %s",
			m.CPU, m.Cores, m.Kernel, res.Settings.TCPCongestion, res.Settings.Rounds, report.LoadString(m.LoadStart)),
		2, panels)
}
