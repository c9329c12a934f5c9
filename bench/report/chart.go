package report

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// A Bar is one bar of a panel: a value, or a note saying why there is none.
type Bar struct {
	Label string
	Value float64
	OK    bool   // Value was measured; if not, Note is drawn instead
	Note  string // why there is no value
	Color string
	// Suffix follows the value's number, e.g. " (0.92× socat)".
	Suffix string
}

// A Group is a run of a panel's bars under a label of its own; a group
// with no label draws no label line.
type Group struct {
	Label string
	Bars  []Bar
}

// A Panel is one small horizontal bar chart: a title and its groups of
// bars, each group on its own scale (its largest value is its longest
// bar: the groups' values may differ tenfold, as a 100 Mbit/s link's
// and a 1 Gbit/s link's do); every bar is labelled with its number.
type Panel struct {
	Title  string
	Groups []Group
}

// chart draws one small bar chart per headline metric, rows as bars in
// the colors that colors maps their keys to.
func chart(res *Results, colors map[string]string) []byte {
	// rowBars has one bar per row; with ratio, the bars of the rows
	// compared with socat (all but the baselines) also say how.
	rowBars := func(metric string, ratio bool) []Group {
		var out []Bar
		for _, r := range res.Rows {
			b := Bar{Label: r.Name, Color: colors[r.Key]}
			if s := r.Metrics[metric]; s != nil {
				b.Value, b.OK = s.Median, true
				if v, ok := res.RatioOf(r.Key, Socat, metric); ok && ratio {
					b.Suffix = fmt.Sprintf(" (%.2f× socat)", v)
				}
			} else {
				b.Note = r.missing(metric)
			}
			out = append(out, b)
		}
		return []Group{{Bars: out}}
	}
	daemonBars := func(metric string) []Group {
		var out []Bar
		for _, r := range res.Rows {
			if r.Key == Raw {
				continue
			}
			if len(r.Daemons) == 0 {
				out = append(out, Bar{Label: r.Name, Color: colors[r.Key], Note: r.missingDaemon(metric, true)})
				continue
			}
			for _, d := range r.Daemons {
				label := r.Name
				if len(r.Daemons) > 1 {
					label += " " + d.Name
				}
				b := Bar{Label: label, Color: colors[r.Key]}
				if s := d.Metrics[metric]; s != nil {
					b.Value, b.OK = s.Median, true
				} else {
					b.Note = r.missingDaemon(metric, true)
				}
				out = append(out, b)
			}
		}
		return []Group{{Bars: out}}
	}
	maxHeld := slices.Max(res.Settings.Held)
	panels := []Panel{
		{"MB/s, 1 connection, upload", rowBars("mbps_up_1", true)},
		{"MB/s, 1 connection, download", rowBars("mbps_down_1", true)},
		{"MB/s, 8 connections, upload", rowBars("mbps_up_8", true)},
		{"MB/s, 8 connections, download", rowBars("mbps_down_8", true)},
		{"new connections/s", rowBars("conns_per_s", true)},
		{"first byte p99, ms, flat out (lower is better)", rowBars("ttfb_p99_ms", false)},
		{fmt.Sprintf("first byte p99, ms, at %d/s (lower is better)", res.Settings.Paced), rowBars("paced_ttfb_p99_ms", false)},
		{"CPU-s per GB, 1 connection (lower is better)", daemonBars("cpu_s_per_gb_1")},
		{fmt.Sprintf("KiB RSS per connection, %d held (lower is better)", maxHeld), daemonBars(fmt.Sprintf("rss_kib_per_conn_%d", maxHeld))},
		{"idle RSS, MiB (lower is better)", daemonBars("idle_rss_mib")},
		{"idle anon (its own memory), MiB (lower is better)", daemonBars("idle_anon_mib")},
	}
	if res.hasIperf3() { // iperf.go
		for _, m := range IperfRatioMetrics {
			panels = append(panels, Panel{"iperf3 MB/s, " + m.Title, rowBars(m.Key, true)})
		}
		panels = append(panels, Panel{"iperf3 CPU-s per GB, all processes (lower is better)", rowBars("iperf_cpu_s_per_gb", false)})
	}
	m := res.Machine
	return Chart(fmt.Sprintf("p2ptun %v vs socat vs raw loopback", m.P2ptun["Version"]),
		fmt.Sprintf("%s, %d cores, Linux %s; medians of %d interleaved rounds; load %s",
			m.CPU, m.Cores, m.Kernel, res.Settings.Rounds, LoadString(m.LoadStart)),
		3, panels)
}

// Chart is an SVG of panels, cols to a row, under a title and a subtitle
// (plain text: Chart escapes them, and every label and note).
func Chart(title, subtitle string, cols int, panels []Panel) []byte {
	const (
		panelW, labelW, barH, gap, titleH, pad = 360, 130, 16, 5, 24, 14
	)
	maxLines := 0
	for _, p := range panels {
		n := 0
		for _, g := range p.Groups {
			if g.Label != "" {
				n++
			}
			n += len(g.Bars)
		}
		maxLines = max(maxLines, n)
	}
	panelH := titleH + maxLines*(barH+gap) + pad
	headH := 44
	width := cols*panelW + pad
	height := headH + (len(panels)+cols-1)/cols*panelH + pad

	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(w, `<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>`+"\n", pad, esc(title))
	fmt.Fprintf(w, `<text x="%d" y="34" fill="#555">%s</text>`+"\n", pad, esc(subtitle))
	for i, p := range panels {
		x0 := pad + (i%cols)*panelW
		y0 := headH + (i/cols)*panelH
		fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, y0+14, esc(p.Title))
		barMax := float64(panelW - labelW - 100)
		line := 0
		for _, g := range p.Groups {
			top := 0.0
			for _, bb := range g.Bars {
				if bb.OK {
					top = max(top, bb.Value)
				}
			}
			if g.Label != "" {
				y := y0 + titleH + line*(barH+gap)
				fmt.Fprintf(w, `<text x="%d" y="%d" font-style="italic" fill="#333">%s</text>`+"\n", x0, y+barH-4, esc(g.Label))
				line++
			}
			for _, bb := range g.Bars {
				y := y0 + titleH + line*(barH+gap)
				line++
				fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x0+labelW-6, y+barH-4, esc(bb.Label))
				if !bb.OK {
					fmt.Fprintf(w, `<text x="%d" y="%d" fill="#888">%s</text>`+"\n", x0+labelW, y+barH-4, esc(bb.Note))
					continue
				}
				l := 0.0
				if top > 0 {
					l = bb.Value / top * barMax
				}
				fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0+labelW, y, max(l, 1), barH, bb.Color)
				fmt.Fprintf(w, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(x0+labelW)+max(l, 1)+4, y+barH-4, esc(num(bb.Value)+bb.Suffix))
			}
		}
	}
	fmt.Fprintln(w, "</svg>")
	w.Flush()
	return b.Bytes()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
