package report

import (
	"bytes"
	"fmt"
	"strings"
	"text/tabwriter"
)

// Iperf3Run is the iperf3 section of results.json: the rows' metrics
// iperf_* (see Units) were measured by this iperf3, or Skip says why not.
type Iperf3Run struct {
	Version string `json:"version,omitempty"`
	Seconds int    `json:"seconds"` // -t of each test
	Skip    string `json:"skip,omitempty"`
}

// IperfRatioMetrics are iperf3's row metrics compared with the
// baselines, with their column titles.
var IperfRatioMetrics = []struct{ Key, Title string }{
	{"iperf_mbps_up_1", "1 conn up"}, {"iperf_mbps_down_1", "1 conn down"}, {"iperf_mbps_down_8", "8 conns down"},
}

// hasIperf3 is whether any row has iperf3 numbers (a results.json from
// before iperf3 was run has none).
func (res *Results) hasIperf3() bool {
	for _, r := range res.Rows {
		for _, m := range IperfRatioMetrics {
			if r.Metrics[m.Key] != nil {
				return true
			}
		}
	}
	return false
}

// spread is a median with the range of the rounds, "0.55 (0.50–0.61)",
// or with unit "×" after the median: "0.55× (0.50–0.61)".
func spread(s *Stat, format, unit string) string {
	if s == nil {
		return none
	}
	return fmt.Sprintf(format+unit+" ("+format+"–"+format+")", s.Median, s.Min, s.Max)
}

// formatIperf3 is iperf3's table and its ratios to socat, each a median
// with its spread over the rounds; nothing for results without iperf3.
func formatIperf3(res *Results, pad func(string) string) string {
	run := res.Iperf3
	if run == nil {
		return ""
	}
	var b bytes.Buffer
	if run.Skip != "" {
		fmt.Fprintf(&b, "\niperf3: not run: %s\n", run.Skip)
		return b.String()
	}
	if !res.hasIperf3() {
		return ""
	}
	fmt.Fprintf(&b, "\n%s through each row (iperf3 -c ADDR -t %d -J; -R: the server sends; -P 8: 8 connections):\n", run.Version, run.Seconds)
	b.WriteString("MB/s received, and CPU-s per GB of the row's processes; medians (min–max over the rounds)\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, pad("iperf3, MB/s")+"\t")
	for _, m := range IperfRatioMetrics {
		fmt.Fprintf(w, "%s\t", m.Title)
	}
	fmt.Fprintln(w, "CPU-s/GB per process\tCPU-s/GB all\t")
	for _, r := range res.Rows {
		fmt.Fprintf(w, "%s\t", pad(r.Name))
		for _, m := range IperfRatioMetrics {
			fmt.Fprintf(w, "%s\t", r.spreadCell(m.Key, "%.0f"))
		}
		fmt.Fprintf(w, "%s\t%s\t\n", r.daemonCell("iperf_cpu_s_per_gb", 1), r.spreadCell("iperf_cpu_s_per_gb", "%.2f"))
	}
	w.Flush()

	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w)
	fmt.Fprint(w, pad("iperf3 ratios, per round")+"\t")
	for _, m := range IperfRatioMetrics {
		fmt.Fprintf(w, "%s\t", m.Title)
	}
	fmt.Fprintln(w)
	for _, r := range res.Rows {
		if r.Key == Socat || r.Key == Raw {
			continue
		}
		var cells []string
		for _, m := range IperfRatioMetrics {
			cells = append(cells, spread(res.ratio(r.Key, Socat, m.Key), "%.2f", "×"))
		}
		if strings.Count(strings.Join(cells, ""), none) == len(cells) {
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t\n", pad(r.Name+" / socat"), strings.Join(cells, "\t"))
	}
	w.Flush()
	return b.String()
}

// spreadCell is a row metric's median and spread, or why it is missing.
func (r *RowResult) spreadCell(metric, format string) string {
	if s := r.Metrics[metric]; s != nil {
		return spread(s, format, "")
	}
	return r.missing(metric)
}

// ratio is the Ratio of row to base on metric, or nil.
func (res *Results) ratio(row, base, metric string) *Stat {
	for _, r := range res.Ratios {
		if r.Row == row && r.Base == base && r.Metric == metric {
			return r.Stat
		}
	}
	return nil
}
