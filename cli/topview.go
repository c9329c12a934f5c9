package cli

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/p2ptun/p2ptun/api"
)

// streamRate is a stream with the bytes per second it moved between two
// polls.
type streamRate struct {
	api.Stream
	InRate, OutRate float64
}

// tunnelRate is a tunnel with its live streams' count and summed rates.
type tunnelRate struct {
	api.Listener
	Streams         int
	InRate, OutRate float64
}

// topView is what one snapshot shows.
type topView struct {
	at      time.Time
	tunnels []tunnelRate
	streams []streamRate
}

// topRates computes each live stream's rates from the bytes it moved
// since prev. A stream missing from prev opened since, so all its bytes
// are new; so are those of a stream whose counters went down (an ID
// reused after a daemon restart). A stream that ended since prev simply
// drops out: tunnels sum their live streams' rates, never a difference of
// totals, so an ending stream cannot make a rate negative. Streams are
// ordered busiest first.
func topRates(prev, cur topSample) topView {
	dt := cur.at.Sub(prev.at).Seconds()
	before := make(map[string]api.Stream, len(prev.streams))
	for _, s := range prev.streams {
		before[s.HandlerID] = s
	}
	rate := func(now, then int64) float64 {
		if dt <= 0 {
			return 0
		}
		if now < then { // a counter reset: everything is new
			then = 0
		}
		return float64(now-then) / dt
	}
	v := topView{at: cur.at}
	byTunnel := make(map[uint64]*tunnelRate)
	for _, l := range cur.listeners {
		v.tunnels = append(v.tunnels, tunnelRate{Listener: l})
	}
	for i := range v.tunnels {
		byTunnel[v.tunnels[i].ID] = &v.tunnels[i]
	}
	for _, s := range cur.streams {
		p, seen := before[s.HandlerID]
		if !seen || s.BytesIn < p.BytesIn || s.BytesOut < p.BytesOut {
			p = api.Stream{}
		}
		r := streamRate{Stream: s, InRate: rate(s.BytesIn, p.BytesIn), OutRate: rate(s.BytesOut, p.BytesOut)}
		v.streams = append(v.streams, r)
		if t := byTunnel[s.ListenerID]; t != nil {
			t.Streams++
			t.InRate += r.InRate
			t.OutRate += r.OutRate
		}
	}
	slices.SortStableFunc(v.streams, func(a, b streamRate) int {
		if c := cmp.Compare(b.InRate+b.OutRate, a.InRate+a.OutRate); c != 0 {
			return c
		}
		return cmp.Compare(handlerID(a.HandlerID), handlerID(b.HandlerID))
	})
	return v
}

func handlerID(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// renderTop formats a snapshot. With a width, lines are cut to it; with a
// height, stream rows that do not fit are summarised in one line.
func renderTop(v topView, width, height int) string {
	var in, out float64
	for _, s := range v.streams {
		in += s.InRate
		out += s.OutRate
	}
	var b strings.Builder
	fmt.Fprintf(&b, "p2ptun top  %s  %d %s, %d %s  in %s  out %s\n\n", v.at.Format("15:04:05"),
		len(v.tunnels), plural(len(v.tunnels), "tunnel"), len(v.streams), plural(len(v.streams), "stream"), perSecond(in), perSecond(out))

	tw := tabwriter.NewWriter(&b, 1, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "TUNNEL\tKIND\tPROTOCOL\tLISTEN\tTARGET\tSTREAMS\tIN/S\tOUT/S")
	for _, t := range v.tunnels {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", t.ID, t.Kind, t.Protocol,
			shortPeers(t.ListenAddress), shortPeers(t.TargetAddress), t.Streams, perSecond(t.InRate), perSecond(t.OutRate))
	}
	tw.Flush()
	b.WriteString("\n")

	rows := v.streams
	hidden := 0
	// Five lines of titles and blanks, and one spare: a newline on the
	// last line of a terminal would scroll it.
	if avail := height - 5 - len(v.tunnels) - 1; height > 0 && len(rows) > avail {
		keep := max(avail-1, 0) // room for the "more" line
		hidden = len(rows) - keep
		rows = rows[:keep]
	}
	tw = tabwriter.NewWriter(&b, 1, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tTUNNEL\tPEER\tPATH\tAGE\tIN\tOUT\tIN/S\tOUT/S")
	for _, s := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.HandlerID, s.ListenerID, shortPeer(s.Peer), shortPath(s.Path),
			age(v.at.Sub(s.OpenedAt)), humanBytes(float64(s.BytesIn)), humanBytes(float64(s.BytesOut)), perSecond(s.InRate), perSecond(s.OutRate))
	}
	tw.Flush()
	if hidden > 0 {
		fmt.Fprintf(&b, "… %d more %s\n", hidden, plural(hidden, "stream"))
	}
	if width <= 0 {
		return b.String()
	}
	lines := strings.SplitAfter(b.String(), "\n")
	for i, l := range lines {
		if r := []rune(strings.TrimSuffix(l, "\n")); len(r) > width {
			lines[i] = string(r[:width]) + "\n"
		}
	}
	return strings.Join(lines, "")
}

// shortPeer keeps the end of a peer ID, the part that tells peers apart
// (every Ed25519 ID starts with 12D3KooW).
func shortPeer(id string) string {
	const keep = 8
	if len(id) <= keep+1 {
		return id
	}
	return "…" + id[len(id)-keep:]
}

// shortPeers shortens the peer ID of a /p2p/ address.
func shortPeers(addr string) string {
	if before, id, ok := strings.Cut(addr, "/p2p/"); ok && !strings.Contains(id, "/") {
		return before + "/p2p/" + shortPeer(id)
	}
	return addr
}

// shortPath writes a stream's path as one word: "direct" or
// "relay:…<relay ID>".
func shortPath(p string) string {
	if relay, ok := strings.CutPrefix(p, "relayed via "); ok {
		return "relay:" + shortPeer(relay)
	}
	if p == "" {
		return "-"
	}
	return p
}

// age formats how long a stream has lived, to the second.
func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Truncate(time.Second).String()
}

// perSecond formats a rate in bytes per second with binary prefixes.
func perSecond(r float64) string { return humanBytes(r) + "/s" }

// humanBytes formats a count of bytes with binary prefixes: 512B, 1.5KiB.
func humanBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0fB", n)
	}
	return fmt.Sprintf("%.1f%s", n, units[i])
}
