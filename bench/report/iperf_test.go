package report

import (
	"strings"
	"testing"
)

// iperfResults has socat and p2ptun TCP measured by iperf3 over three
// rounds, p2ptun missing round 2 of one metric; and kubo skipped.
func iperfResults() *Results {
	row := func(key, name string, samples map[string][]float64) *RowResult {
		r := &RowResult{Key: key, Name: name, Metrics: map[string]*Stat{}}
		for m, vs := range samples {
			for round, v := range vs {
				if v > 0 {
					r.Metrics[m] = r.Metrics[m].Add(round, v)
				}
			}
		}
		return r
	}
	res := &Results{
		Settings: Settings{Rounds: 3, Held: []int{20}},
		Iperf3:   &Iperf3Run{Version: "iperf 3.12", Seconds: 2},
		Rows: []*RowResult{
			row(Socat, "socat", map[string][]float64{
				"iperf_mbps_up_1": {600, 700, 800}, "iperf_mbps_down_1": {500, 500, 500}, "iperf_mbps_down_8": {900, 1000, 800},
			}),
			row("p2ptun-tcp", "p2ptun TCP", map[string][]float64{
				// Ratios per round: 0.5, 0.4, 0.75; the median 0.5, not 420/700.
				"iperf_mbps_up_1": {300, 280, 600}, "iperf_mbps_down_1": {450, 0, 400}, "iperf_mbps_down_8": {450, 500, 400},
			}),
			{Key: "kubo", Name: "kubo ipfs p2p", Skip: "not installed", Metrics: map[string]*Stat{}},
		},
	}
	res.Rows[1].Daemon("forward").Metrics["iperf_cpu_s_per_gb"] = (*Stat)(nil).Add(0, 1.25)
	res.Rows[1].Daemon("listen").Metrics["iperf_cpu_s_per_gb"] = (*Stat)(nil).Add(0, 1.5)
	res.Rows[1].Metrics["iperf_cpu_s_per_gb"] = (*Stat)(nil).Add(0, 2.75)
	for _, r := range res.Rows {
		r.Summarize()
	}
	res.ComputeRatios()
	return res
}

// Ratios pair each row with socat round by round; a round one of them
// missed is left out.
func TestIperf3Ratios(t *testing.T) {
	res := iperfResults()
	for _, tc := range []struct {
		metric        string
		rounds        int
		med, min, max float64
	}{
		{"iperf_mbps_up_1", 3, 0.5, 0.4, 0.75},
		{"iperf_mbps_down_1", 2, 0.85, 0.8, 0.9},
		{"iperf_mbps_down_8", 3, 0.5, 0.5, 0.5},
	} {
		s := res.ratio("p2ptun-tcp", Socat, tc.metric)
		if s == nil {
			t.Errorf("%s: no ratio to socat", tc.metric)
			continue
		}
		if len(s.Samples) != tc.rounds || !near(s.Median, tc.med) || !near(s.Min, tc.min) || !near(s.Max, tc.max) {
			t.Errorf("%s: ratio %+v, want %d rounds, median %v (%v–%v)", tc.metric, s, tc.rounds, tc.med, tc.min, tc.max)
		}
	}
	if s := res.ratio("kubo", Socat, "iperf_mbps_up_1"); s != nil {
		t.Errorf("a skipped row has a ratio: %+v", s)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestIperf3Table(t *testing.T) {
	// Compared with runs of spaces as one, so that a column's width
	// does not matter.
	table := Table(iperfResults())
	flat := strings.Join(strings.Fields(table), " ")
	for _, want := range []string{
		"iperf 3.12 through each row (iperf3 -c ADDR -t 2 -J;",
		"socat                                   700 (600–800)  500 (500–500)  900 (800–1000)",
		"p2ptun TCP                              300 (280–600)  425 (400–450)   450 (400–500)           1.25 / 1.50  2.75 (2.75–2.75)",
		"kubo ipfs p2p                           not installed  not installed   not installed         not installed     not installed",
		"p2ptun TCP / socat                  0.50× (0.40–0.75)  0.85× (0.80–0.90)  0.50× (0.50–0.50)",
	} {
		if !strings.Contains(flat, strings.Join(strings.Fields(want), " ")) {
			t.Errorf("the table has no line with %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "kubo ipfs p2p / socat") {
		t.Errorf("the ratios name a skipped row:\n%s", table)
	}

	res := iperfResults()
	res.Iperf3 = &Iperf3Run{Skip: "iperf3 is not installed"}
	if table := Table(res); !strings.Contains(table, "\niperf3: not run: iperf3 is not installed\n") {
		t.Errorf("a run without iperf3 does not say why:\n%s", table)
	}
	// results.json from before iperf3: no section, and no panel.
	res.Iperf3, res.Ratios = nil, nil
	for _, r := range res.Rows {
		clear(r.Metrics)
		for _, d := range r.Daemons {
			clear(d.Metrics)
		}
	}
	if table := Table(res); strings.Contains(table, "iperf") {
		t.Errorf("results without iperf3 show an iperf3 section:\n%s", table)
	}
	if svg := string(chart(res, nil)); strings.Contains(svg, "iperf3") {
		t.Errorf("results without iperf3 draw an iperf3 panel")
	}
	if svg := string(chart(iperfResults(), nil)); !strings.Contains(svg, "iperf3 MB/s, 1 conn up") || !strings.Contains(svg, "0.50× socat") {
		t.Errorf("the chart has no iperf3 panel with the ratio to socat:\n%s", svg)
	}
}
