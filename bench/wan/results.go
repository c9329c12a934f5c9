//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/p2ptun/p2ptun/bench/report"
)

// Results is what results.json holds.
type Results struct {
	Machine  report.Machine `json:"machine"`
	Settings Settings       `json:"settings"`
	Links    []*LinkResult  `json:"links"`
	Goals    []Goal         `json:"goals"`
}

// Settings are the knobs of the run, and the units.
type Settings struct {
	Rounds  int  `json:"rounds"`
	Seconds int  `json:"iperf_seconds"`
	Warm    int  `json:"warm_samples_per_round"`
	Quick   bool `json:"quick"`
	// TCPCongestion is the namespaces' TCP congestion control; QUIC
	// brings its own (quic-go's).
	TCPCongestion string  `json:"tcp_congestion_control"`
	RunSeconds    float64 `json:"run_seconds"`
	Units         string  `json:"units"`
}

// Units says what every metric key of results.json means.
const Units = "mbps_1, mbps_8: 10^6 bits/s that iperf3's server received from its client through the path, " +
	"one stream and 8 parallel ones (the first second omitted on links of 100 ms and more: slow start); " +
	"warm_ms: a new connection through the path, from before the dial to one byte's echo, the path's peer connection up; " +
	"cold_ms: the same through a new peer (a restarted daemon, a lazy forward: its libp2p dial and handshakes), for plain TCP both are a new TCP connection to the echo server across the link, without socat"

// LinkResult is one emulated link and every path measured across it.
type LinkResult struct {
	Name     string  `json:"name"`
	RTTms    float64 `json:"rtt_ms"`
	RateMbps float64 `json:"rate_mbps"`
	LossPct  float64 `json:"loss_pct"`
	MTU      int     `json:"mtu"`
	// TCPCongestion is the namespaces' TCP congestion control.
	TCPCongestion string `json:"tcp_congestion_control"`
	// EmulatorDrops is the packets the kernel dropped before the emulator
	// read them (it fell behind): losses the link was not set to make.
	EmulatorDrops int64         `json:"emulator_drops"`
	Paths         []*PathResult `json:"paths"`
	Errors        []string      `json:"errors,omitempty"`
}

// PathResult is one path's measurements on one link.
type PathResult struct {
	Key     string                  `json:"key"`
	Name    string                  `json:"name"`
	Skip    string                  `json:"skip,omitempty"`
	Metrics map[string]*report.Stat `json:"metrics"`
	Errors  []string                `json:"errors,omitempty"`
}

// A Goal is one of issue 16's goals on one link, met or not.
type Goal struct {
	Link  string  `json:"link"`
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Want  string  `json:"want"`
	Met   *bool   `json:"met,omitempty"` // absent: stated, not judged
}

// columns are the table's metrics, in order, with their titles.
var columns = []struct{ Key, Title string }{
	{"mbps_1", "1 stream Mbit/s"}, {"mbps_8", "8 streams Mbit/s"},
	{"warm_ms", "warm first byte ms"}, {"cold_ms", "cold connect+first byte ms"},
}

// path returns the link's path key, or nil.
func (l *LinkResult) path(key string) *PathResult {
	for _, p := range l.Paths {
		if p.Key == key {
			return p
		}
	}
	return nil
}

// median is a path's median of metric, if measured.
func (l *LinkResult) median(key, metric string) (float64, bool) {
	p := l.path(key)
	if p == nil || p.Metrics[metric] == nil {
		return 0, false
	}
	return p.Metrics[metric].Median, true
}

// cell is "median (min–max)", or why there is none.
func cell(p *PathResult, metric string) string {
	if p.Skip != "" {
		return "skipped"
	}
	s := p.Metrics[metric]
	if s == nil {
		return "—"
	}
	return s.Range()
}

// ComputeGoals judges issue 16's WAN goals on every link from the medians.
func (res *Results) ComputeGoals() {
	res.Goals = nil
	add := func(link, goal string, v float64, want string) {
		g := Goal{Link: link, Goal: goal, Value: v, Want: want}
		if yes, ok := met(want, v); ok {
			g.Met = &yes
		}
		res.Goals = append(res.Goals, g)
	}
	for _, l := range res.Links {
		base, ok := l.median("tcp", "mbps_1")
		for _, k := range []string{"p2ptun-tcp", "p2ptun-quic"} {
			if v, ok2 := l.median(k, "mbps_1"); ok && ok2 && base > 0 {
				add(l.Name, k+": one stream / plain TCP", v/base, "≥ 0.9")
			}
			if v, ok := l.median(k, "warm_ms"); ok {
				add(l.Name, k+": warm first byte − RTT, ms", v-l.RTTms, "≤ 2")
			}
			if v, ok := l.median(k, "cold_ms"); ok && l.RTTms > 0 {
				add(l.Name, k+": cold connect+first byte, in RTTs", v/l.RTTms, "stated")
			}
		}
		if l.LossPct > 0 {
			q, ok1 := l.median("p2ptun-quic", "mbps_8")
			t, ok2 := l.median("p2ptun-tcp", "mbps_8")
			if ok1 && ok2 && t > 0 {
				add(l.Name, "8 streams with loss: QUIC / TCP", q/t, "≥ 1")
			}
		}
	}
}

// Table is the text table of res: every link's paths, then the goals.
func Table(res *Results) string {
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	titles := []string{"link (RTT, rate, loss)", "path"}
	for _, c := range columns {
		titles = append(titles, c.Title)
	}
	fmt.Fprintln(w, strings.Join(titles, "\t"))
	for _, l := range res.Links {
		for i, p := range l.Paths {
			name := ""
			if i == 0 {
				name = l.Name
			}
			cells := []string{name, p.Name}
			for _, c := range columns {
				cells = append(cells, cell(p, c.Key))
			}
			fmt.Fprintln(w, strings.Join(cells, "\t"))
		}
	}
	w.Flush()
	fmt.Fprintf(&b, "\nmedian (min–max) over %d round(s); TCP congestion control %s; %s\n", res.Settings.Rounds, res.Settings.TCPCongestion, Units)
	if len(res.Goals) > 0 {
		fmt.Fprintln(&b, "\ngoals (issue 16), from the medians:")
		w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, g := range res.Goals {
			fmt.Fprintf(w, "%s\t%s\t%s\twant %s\t%s\n", g.Link, g.Goal, report.Num(g.Value), g.Want, verdict(g.Want, g.Value))
		}
		w.Flush()
	}
	for _, l := range res.Links {
		for _, e := range l.Errors {
			fmt.Fprintf(&b, "%s: %s\n", l.Name, e)
		}
		for _, p := range l.Paths {
			if p.Skip != "" {
				fmt.Fprintf(&b, "%s, %s: %s\n", l.Name, p.Name, p.Skip)
			}
			for _, e := range p.Errors {
				fmt.Fprintf(&b, "%s, %s: %s\n", l.Name, p.Name, e)
			}
		}
	}
	return b.String()
}

// Write writes results.json, results.txt and the chart, results.svg, to dir.
func Write(dir string, res *Results, table string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.txt"), []byte(table), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.svg"), chart(res), 0o644)
}
