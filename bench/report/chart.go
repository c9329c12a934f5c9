package report

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// chart draws one small bar chart per headline metric, rows as bars in
// the colors that colors maps their keys to.
func chart(res *Results, colors map[string]string) []byte {
	type bar struct {
		label  string
		value  float64
		ok     bool
		note   string
		color  string
		suffix string
	}
	// rowBars has one bar per row; with ratio, the bars of the rows
	// compared with socat (all but the baselines) also say how.
	rowBars := func(metric string, ratio bool) []bar {
		var out []bar
		for _, r := range res.Rows {
			b := bar{label: r.Name, color: colors[r.Key]}
			if s := r.Metrics[metric]; s != nil {
				b.value, b.ok = s.Median, true
				if v, ok := res.RatioOf(r.Key, Socat, metric); ok && ratio {
					b.suffix = fmt.Sprintf(" (%.2f× socat)", v)
				}
			} else {
				b.note = r.missing(metric)
			}
			out = append(out, b)
		}
		return out
	}
	daemonBars := func(metric string) []bar {
		var out []bar
		for _, r := range res.Rows {
			if r.Key == Raw {
				continue
			}
			if len(r.Daemons) == 0 {
				out = append(out, bar{label: r.Name, color: colors[r.Key], note: r.missingDaemon(metric, true)})
				continue
			}
			for _, d := range r.Daemons {
				label := r.Name
				if len(r.Daemons) > 1 {
					label += " " + d.Name
				}
				b := bar{label: label, color: colors[r.Key]}
				if s := d.Metrics[metric]; s != nil {
					b.value, b.ok = s.Median, true
				} else {
					b.note = r.missingDaemon(metric, true)
				}
				out = append(out, b)
			}
		}
		return out
	}
	maxHeld := slices.Max(res.Settings.Held)
	panels := []struct {
		title string
		bars  []bar
	}{
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
			panels = append(panels, struct {
				title string
				bars  []bar
			}{"iperf3 MB/s, " + m.Title, rowBars(m.Key, true)})
		}
		panels = append(panels, struct {
			title string
			bars  []bar
		}{"iperf3 CPU-s per GB, all processes (lower is better)", rowBars("iperf_cpu_s_per_gb", false)})
	}
	const (
		cols, panelW, labelW, barH, gap, titleH, pad = 3, 360, 130, 16, 5, 24, 14
	)
	maxBars := 0
	for _, p := range panels {
		maxBars = max(maxBars, len(p.bars))
	}
	panelH := titleH + maxBars*(barH+gap) + pad
	headH := 44
	width := cols*panelW + pad
	height := headH + (len(panels)+cols-1)/cols*panelH + pad

	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	m := res.Machine
	fmt.Fprintf(w, `<text x="%d" y="18" font-size="14" font-weight="bold">p2ptun %v vs socat vs raw loopback</text>`+"\n", pad, esc(fmt.Sprint(m.P2ptun["Version"])))
	fmt.Fprintf(w, `<text x="%d" y="34" fill="#555">%s, %d cores, Linux %s; medians of %d interleaved rounds; load %s</text>`+"\n",
		pad, esc(m.CPU), m.Cores, esc(m.Kernel), res.Settings.Rounds, loadString(m.LoadStart))
	for i, p := range panels {
		x0 := pad + (i%cols)*panelW
		y0 := headH + (i/cols)*panelH
		fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, y0+14, esc(p.title))
		top := 0.0
		for _, bb := range p.bars {
			if bb.ok {
				top = max(top, bb.value)
			}
		}
		barMax := float64(panelW - labelW - 100)
		for j, bb := range p.bars {
			y := y0 + titleH + j*(barH+gap)
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x0+labelW-6, y+barH-4, esc(bb.label))
			if !bb.ok {
				fmt.Fprintf(w, `<text x="%d" y="%d" fill="#888">%s</text>`+"\n", x0+labelW, y+barH-4, esc(bb.note))
				continue
			}
			l := 0.0
			if top > 0 {
				l = bb.value / top * barMax
			}
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0+labelW, y, max(l, 1), barH, bb.color)
			fmt.Fprintf(w, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(x0+labelW)+max(l, 1)+4, y+barH-4, esc(num(bb.value)+bb.suffix))
		}
	}
	fmt.Fprintln(w, "</svg>")
	w.Flush()
	return b.Bytes()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
