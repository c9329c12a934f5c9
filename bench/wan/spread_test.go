//go:build linux

package main

import (
	"strings"
	"testing"
)

// Over several runs each goal shows every run's value, their median and
// range, and the verdict from that median; a goal a run lacks is a dash.
func TestSpread(t *testing.T) {
	a, b, c := sampleResults(), sampleResults(), sampleResults()
	// p2ptun TCP's one stream in run b: 0.8 of plain TCP; run c lacks QUIC.
	b.Links[0].Paths[1].Metrics["mbps_1"] = stat(360)
	c.Links[0].Paths = c.Links[0].Paths[:2]
	for _, res := range []*Results{a, b, c} {
		res.ComputeGoals()
	}
	got := Spread([]*Results{a, b, c}, []string{"a.json", "b.json", "c.json"})
	for _, want := range []string{
		"over 3 runs",
		"run 3: c.json",
		// 0.911, 0.8, 0.911: the median meets ≥ 0.9 though one run did not.
		"100ms 1Gbit/s 0.5% loss  p2ptun-tcp: one stream / plain TCP            ≥ 0.9   0.91   0.80   0.91   0.91 (0.80–0.91)  met\n",
		"100ms 1Gbit/s 0.5% loss  p2ptun-tcp: cold connect+first byte, in RTTs  stated  5.05   5.05   5.05   5.05 (5.05–5.05)  stated\n",
		"100ms 1Gbit/s 0.5% loss  p2ptun-quic: one stream / plain TCP           ≥ 0.9   0.44   0.44   —      0.44 (0.44–0.44)  NOT met\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("spread lacks %q:\n%s", want, got)
		}
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		want string
		v    float64
		out  string
	}{
		{"≥ 0.9", 0.9, "met"}, {"≥ 0.9", 0.89, "NOT met"}, {"≤ 2", 2, "met"}, {"≤ 2", 2.01, "NOT met"}, {"stated", 5, "stated"}, {"≥ x", 1, "stated"},
	} {
		if got := verdict(tc.want, tc.v); got != tc.out {
			t.Errorf("verdict(%q, %v) = %s, want %s", tc.want, tc.v, got, tc.out)
		}
	}
}
