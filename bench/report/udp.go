package report

import (
	"bytes"
	"fmt"
	"text/tabwriter"
)

// UDPResults is the UDP section of results.json.
type UDPResults struct {
	Size   int       `json:"size"`   // bytes per datagram
	Window int       `json:"window"` // datagrams in flight
	Rows   []*UDPRow `json:"rows"`
	// Ratio is p2ptun's datagrams/s over the baseline's, round by round.
	Ratio *Stat `json:"ratio,omitempty"`
}

// UDPRow is one way of reaching the UDP target.
type UDPRow struct {
	Key    string   `json:"key"`
	Name   string   `json:"name"`
	Echoed *Stat    `json:"datagrams_per_s,omitempty"` // echoes a second: each datagram crossed both ways
	MBps   *Stat    `json:"mbps,omitempty"`            // 10^6 payload bytes a second, each way
	Lost   int      `json:"lost"`                      // datagrams sent that never came back
	Errors []string `json:"errors,omitempty"`
}

// formatUDP is the UDP table: medians, with the spread of the rounds.
func formatUDP(u *UDPResults) string {
	if u == nil {
		return ""
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "\nUDP: one flow, %d-byte datagrams echoed, %d in flight; medians (min–max over the rounds)\n", u.Size, u.Window)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\tdatagrams/s\tMB/s each way\tlost\t")
	for _, r := range u.Rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t\n", r.Name, spread(r.Echoed, "%.0f", ""), spread(r.MBps, "%.1f", ""), r.Lost)
	}
	fmt.Fprintf(w, "p2ptun UDP / raw UDP\t%s\t\t\t\n", spread(u.Ratio, "%.2f", ""))
	w.Flush()
	for _, r := range u.Rows {
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "%s: error: %s\n", r.Name, e)
		}
	}
	return b.String()
}
