//go:build linux

package main

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/p2ptun/p2ptun/bench/report"
)

// Spread sets several runs' goals side by side: each run's value (from
// its medians over its rounds), then the median of those and their range,
// and the verdict from that median. names label the runs.
func Spread(runs []*Results, names []string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "WAN goals (issue 16) over %d runs of bench/wan; a run's value is from its medians over its rounds.\n", len(runs))
	type key struct{ link, goal string }
	var keys []key
	want := map[key]string{}
	for i, res := range runs {
		fmt.Fprintf(&b, "run %d: %s, p2ptun %v, %d rounds, TCP congestion control %s, load %s at the start\n",
			i+1, names[i], res.Machine.P2ptun["Version"], res.Settings.Rounds, res.Settings.TCPCongestion, report.LoadString(res.Machine.LoadStart))
		for _, g := range res.Goals {
			k := key{g.Link, g.Goal}
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
				want[k] = g.Want
			}
		}
	}
	b.WriteString("\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	report.RunColumns(w, "link\tgoal\twant\t", len(runs))
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\t%s\t", k.link, k.goal, want[k])
		over := report.RunCells(w, len(runs), func(i int) (float64, bool) {
			j := slices.IndexFunc(runs[i].Goals, func(g Goal) bool { return g.Link == k.link && g.Goal == k.goal })
			if j < 0 {
				return 0, false
			}
			return runs[i].Goals[j].Value, true
		})
		fmt.Fprintf(w, "%s\t%s\t\n", over.Range(), verdict(want[k], over.Median))
	}
	w.Flush()
	return report.TrimLines(b.String())
}

// met judges v against want, a bound as goals write it ("≥ 0.9",
// "≤ 2"); ok is false for a goal that is only stated.
func met(want string, v float64) (yes, ok bool) {
	for _, b := range []struct {
		prefix string
		cmp    func(v, x float64) bool
	}{{"≥ ", func(v, x float64) bool { return v >= x }}, {"≤ ", func(v, x float64) bool { return v <= x }}} {
		if s, found := strings.CutPrefix(want, b.prefix); found {
			if x, err := strconv.ParseFloat(s, 64); err == nil {
				return b.cmp(v, x), true
			}
		}
	}
	return false, false
}

// verdict is what the tables say of a goal: met, NOT met or stated.
func verdict(want string, v float64) string {
	yes, ok := met(want, v)
	switch {
	case !ok:
		return "stated"
	case yes:
		return "met"
	}
	return "NOT met"
}
