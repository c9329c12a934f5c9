package soak

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// ProcReport is one process's usage before, at the peak of, and after a
// load.
type ProcReport struct {
	Name                  string
	Baseline, Peak, After Usage
}

// WriteTable prints one row per process: fds, goroutines and RSS at the
// baseline, the peak and after the load.
func WriteTable(w io.Writer, procs []ProcReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tfds\t\t\tgoroutines\t\t\tRSS MiB\t\t\t")
	fmt.Fprintln(tw, "daemon\tbase\tpeak\tafter\tbase\tpeak\tafter\tbase\tpeak\tafter\t")
	mib := func(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }
	for _, p := range procs {
		b, k, a := p.Baseline, p.Peak, p.After
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", p.Name,
			b.FDs, k.FDs, a.FDs, b.Goroutines, k.Goroutines, a.Goroutines, mib(b.RSS), mib(k.RSS), mib(a.RSS))
	}
	return tw.Flush()
}

// WriteStats prints what a load moved and checked.
func WriteStats(w io.Writer, workers int, st Stats) {
	fmt.Fprintf(w, "%d at a time for %v: %d connections verified both ways (%s), %d failed\n",
		workers, st.Elapsed.Round(100e6), st.Conns, st.ModeCounts(), st.Failed)
	fmt.Fprintf(w, "verified bytes: %s up (client → target), %s down (target → client)\n", MiB(st.BytesUp), MiB(st.BytesDown))
}
