package report

import (
	"strings"
	"testing"
)

// A goal's number in one run is its median over the rounds, and the
// verdict follows that median; a goal the run did not measure is left out.
func TestGoalsOfOneRun(t *testing.T) {
	got := formatGoals(iperfResults())
	for _, want := range []string{
		// Ratios per round 0.5, 0.4, 0.75.
		"iperf3 1 conn up, p2ptun TCP / socat     ≥ 0.8  0.50 (0.40–0.75)  NOT met\n",
		"iperf3 1 conn down, p2ptun TCP / socat   ≥ 0.8  0.85 (0.80–0.90)  met\n",
		"iperf3 CPU-s/GB, forward daemon          ≤ 1.2  1.25 (1.25–1.25)  NOT met\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("goals lack %q:\n%s", want, got)
		}
	}
	for _, unmeasured := range []string{"idle anon", "QUIC"} {
		if strings.Contains(got, unmeasured) {
			t.Errorf("goals list %q, which the run did not measure:\n%s", unmeasured, got)
		}
	}
}

// Over several runs, each run's median is shown, and the verdict follows
// the median of those; a run that did not measure a goal is a dash.
func TestSpreadOverRuns(t *testing.T) {
	a, b, c := iperfResults(), iperfResults(), iperfResults()
	// QUIC in two of the runs: 0.3 and 0.9 of TCP one connection up.
	for i, res := range []*Results{b, c} {
		tcp := res.row("p2ptun-tcp").Metrics["iperf_mbps_up_1"]
		q := &RowResult{Key: "p2ptun-quic", Name: "p2ptun QUIC", Metrics: map[string]*Stat{}}
		for j, v := range tcp.Samples {
			q.Metrics["iperf_mbps_up_1"] = q.Metrics["iperf_mbps_up_1"].Add(tcp.Rounds[j], v*[]float64{0.3, 0.9}[i])
		}
		q.Summarize()
		res.Rows = append(res.Rows, q)
	}
	b.row("p2ptun-tcp").Daemon("forward").Metrics["iperf_cpu_s_per_gb"] = (*Stat)(nil).Add(0, 1.0)
	c.row("p2ptun-tcp").Daemon("forward").Metrics["iperf_cpu_s_per_gb"] = (*Stat)(nil).Add(0, 1.1)
	for _, res := range []*Results{b, c} {
		res.row("p2ptun-tcp").Summarize()
	}
	got := Spread([]*Results{a, b, c}, []string{"a.json", "b.json", "c.json"})
	for _, want := range []string{
		"over 3 runs",
		"run 2: b.json",
		"iperf3 1 conn up, p2ptun TCP / socat     ≥ 0.8  0.50   0.50   0.50   0.50 (0.50–0.50)  NOT met\n",
		// 1.25, 1.0, 1.1: the median 1.1 meets ≤ 1.2 though one run did not.
		"iperf3 CPU-s/GB, forward daemon          ≤ 1.2  1.25   1.00   1.10   1.10 (1.00–1.25)  met\n",
		"iperf3 1 conn up, QUIC / TCP             ≥ 0.6  —      0.30   0.90   0.60 (0.30–0.90)  met\n",
		"idle anon MiB, listen daemon             ≤ 5    —      —      —      not measured\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("spread lacks %q:\n%s", want, got)
		}
	}
}
