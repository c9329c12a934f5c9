package report

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// A Goal is one of the loopback goals (issue 16): a number taken from one
// run's results and the bound it must meet.
type Goal struct {
	Name string
	bound
	// stat is the goal's number in one run: its median over the rounds,
	// with their spread; nil when the run did not measure it.
	stat func(*Results) *Stat
}

// A bound is what a goal's number must be.
type bound struct {
	Want string // as the tables print it: "≥ 0.8"
	met  func(float64) bool
}

func atLeast(x float64) bound {
	return bound{fmt.Sprintf("≥ %g", x), func(v float64) bool { return v >= x }}
}

func atMost(x float64) bound {
	return bound{fmt.Sprintf("≤ %g", x), func(v float64) bool { return v <= x }}
}

// LoopbackGoals are the loopback goals, each from iperf3 through the rows
// (a tool nobody here wrote) where it can be.
func LoopbackGoals() []Goal {
	ratio := func(row, base, metric string) func(*Results) *Stat {
		return func(res *Results) *Stat { return res.ratio(row, base, metric) }
	}
	daemon := func(row, name, metric string) func(*Results) *Stat {
		return func(res *Results) *Stat {
			if r := res.row(row); r != nil {
				for _, d := range r.Daemons {
					if d.Name == name {
						return d.Metrics[metric]
					}
				}
			}
			return nil
		}
	}
	// QUIC against TCP, round by round as the ratios to socat are.
	quic := func(metric string) func(*Results) *Stat {
		return func(res *Results) *Stat {
			q, t := res.row("p2ptun-quic"), res.row("p2ptun-tcp")
			if q == nil || t == nil {
				return nil
			}
			return RoundRatio(q.Metrics[metric], t.Metrics[metric])
		}
	}
	return []Goal{
		{"iperf3 1 conn up, p2ptun TCP / socat", atLeast(0.8), ratio("p2ptun-tcp", Socat, "iperf_mbps_up_1")},
		{"iperf3 1 conn down, p2ptun TCP / socat", atLeast(0.8), ratio("p2ptun-tcp", Socat, "iperf_mbps_down_1")},
		{"iperf3 8 conns down, p2ptun TCP / socat", atLeast(0.7), ratio("p2ptun-tcp", Socat, "iperf_mbps_down_8")},
		{"iperf3 CPU-s/GB, forward daemon", atMost(1.2), daemon("p2ptun-tcp", "forward", "iperf_cpu_s_per_gb")},
		{"iperf3 CPU-s/GB, listen daemon", atMost(1.2), daemon("p2ptun-tcp", "listen", "iperf_cpu_s_per_gb")},
		{"idle anon MiB, forward daemon", atMost(5), daemon("p2ptun-tcp", "forward", "idle_anon_mib")},
		{"idle anon MiB, listen daemon", atMost(5), daemon("p2ptun-tcp", "listen", "idle_anon_mib")},
		{"iperf3 1 conn up, QUIC / TCP", atLeast(0.6), quic("iperf_mbps_up_1")},
		{"iperf3 1 conn down, QUIC / TCP", atLeast(0.6), quic("iperf_mbps_down_1")},
	}
}

// row is the row with key, or nil.
func (res *Results) row(key string) *RowResult {
	for _, r := range res.Rows {
		if r.Key == key && r.Skip == "" {
			return r
		}
	}
	return nil
}

// RoundRatio is a / b round by round (a sample for each round both
// measured, b's above zero), summarized; nil if there is none.
func RoundRatio(a, b *Stat) *Stat {
	if a == nil || b == nil {
		return nil
	}
	var st *Stat
	for i, round := range a.Rounds {
		for j, bround := range b.Rounds {
			if round == bround && b.Samples[j] > 0 {
				st = st.Add(round, a.Samples[i]/b.Samples[j])
			}
		}
	}
	if st != nil {
		st.Summarize()
	}
	return st
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}

// formatGoals is the goals of one run that it measured: each number's
// median and spread over the rounds, and whether the median meets the
// goal.
func formatGoals(res *Results) string {
	var b bytes.Buffer
	b.WriteString("\nGoals (issue 16), from this run's medians; `go run ./bench -spread` sets several runs side by side:\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, g := range LoopbackGoals() {
		st := g.stat(res)
		if st == nil {
			continue // an older results.json, or a row not run
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t\n", g.Name, g.Want, st.Range(), verdict(g.met(st.Median)))
	}
	w.Flush()
	return TrimLines(b.String())
}

// Spread sets several runs' goals side by side: each run's median, then
// the median of those and their range, and whether that median meets the
// goal. names label the runs (their results.json paths).
func Spread(runs []*Results, names []string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Goals (issue 16) over %d runs of `make bench`; a run's number is its median over its rounds.\n", len(runs))
	for i, res := range runs {
		m := res.Machine
		fmt.Fprintf(&b, "run %d: %s, p2ptun %v, %d rounds, load %s at the start, %s at the end\n",
			i+1, names[i], m.P2ptun["Version"], res.Settings.Rounds, LoadString(m.LoadStart), LoadString(m.LoadEnd))
	}
	b.WriteString("\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	RunColumns(w, "goal\twant\t", len(runs))
	for _, g := range LoopbackGoals() {
		fmt.Fprintf(w, "%s\t%s\t", g.Name, g.Want)
		over := RunCells(w, len(runs), func(i int) (float64, bool) {
			if st := g.stat(runs[i]); st != nil {
				return st.Median, true
			}
			return 0, false
		})
		if over == nil {
			fmt.Fprintln(w, "not measured\t\t")
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t\n", over.Range(), verdict(g.met(over.Median)))
	}
	w.Flush()
	return TrimLines(b.String())
}

// RunColumns writes the header of a table that sets runs side by side:
// lead, a column per run, then their summary and verdict.
func RunColumns(w io.Writer, lead string, runs int) {
	fmt.Fprint(w, lead)
	for i := range runs {
		fmt.Fprintf(w, "run %d\t", i+1)
	}
	fmt.Fprintln(w, "over the runs\t\t")
}

// RunCells writes one row's value in each of runs runs (a dash where
// value has none) and returns them summarized; nil if no run had one.
func RunCells(w io.Writer, runs int, value func(run int) (float64, bool)) *Stat {
	var over *Stat
	for i := range runs {
		v, ok := value(i)
		if !ok {
			fmt.Fprint(w, "—\t")
			continue
		}
		fmt.Fprintf(w, "%s\t", num(v))
		over = over.Add(i, v)
	}
	if over != nil {
		over.Summarize()
	}
	return over
}

// Range is s as the tables print it: "median (min–max)".
func (s *Stat) Range() string {
	return fmt.Sprintf("%s (%s–%s)", num(s.Median), num(s.Min), num(s.Max))
}

// TrimLines drops the spaces tabwriter leaves at the ends of lines.
func TrimLines(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString(strings.TrimRight(line, " \n"))
		b.WriteString("\n")
	}
	return b.String()
}

// hasGoals is whether res measured any goal (a -quick run without
// iperf3 may not have).
func hasGoals(res *Results) bool {
	return slices.ContainsFunc(LoopbackGoals(), func(g Goal) bool { return g.stat(res) != nil })
}
