package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/p2ptun/p2ptun/bench/measure"
)

// Results is what results.json holds.
type Results struct {
	Machine  Machine      `json:"machine"`
	Settings Settings     `json:"settings"`
	Rows     []*RowResult `json:"rows"`
	Ratios   []*Ratio     `json:"ratios"`
	UDP      *UDPResults  `json:"udp,omitempty"`    // udp.go
	Iperf3   *Iperf3Run   `json:"iperf3,omitempty"` // iperf.go
}

// Ratio compares a row with a baseline row on one metric, round by
// round: each sample is row / base in the same round, so that a machine
// that slowed down in one round slowed both sides of the ratio.
type Ratio struct {
	Row    string `json:"row"`
	Base   string `json:"base"`
	Metric string `json:"metric"`
	Stat   *Stat  `json:"stat"`
}

// RatioMetrics are the row metrics compared with the baselines, with
// their column titles.
var RatioMetrics = []struct{ Key, Title string }{
	{"mbps_up_1", "1 conn up"}, {"mbps_down_1", "1 conn down"}, {"mbps_up_8", "8 conns up"},
	{"mbps_down_8", "8 conns down"}, {"conns_per_s", "new conns/s"},
}

// The keys of the baseline rows that the others are compared with.
const (
	Raw   = "raw"   // raw loopback: the client dials the target itself
	Socat = "socat" // socat forwarding
)

// ComputeRatios fills res.Ratios: every row against socat, and every
// row but raw against raw loopback.
func (res *Results) ComputeRatios() {
	rowByKey := map[string]*RowResult{}
	for _, r := range res.Rows {
		rowByKey[r.Key] = r
	}
	for _, base := range []string{Socat, Raw} {
		b := rowByKey[base]
		if b == nil || b.Skip != "" {
			continue
		}
		for _, r := range res.Rows {
			if r.Key == base || r.Key == Raw || r.Skip != "" {
				continue
			}
			for _, m := range slices.Concat(RatioMetrics, IperfRatioMetrics) {
				rs, bs := r.Metrics[m.Key], b.Metrics[m.Key]
				if st := RoundRatio(rs, bs); st != nil {
					res.Ratios = append(res.Ratios, &Ratio{Row: r.Key, Base: base, Metric: m.Key, Stat: st})
				}
			}
		}
	}
}

// RatioOf returns the median of row / base for metric.
func (res *Results) RatioOf(row, base, metric string) (float64, bool) {
	if s := res.ratio(row, base, metric); s != nil {
		return s.Median, true
	}
	return 0, false
}

// Machine describes where the run happened.
type Machine struct {
	CPU       string         `json:"cpu"`
	Cores     int            `json:"cores"`
	AESNI     bool           `json:"aes_ni"`
	MemGiB    float64        `json:"mem_gib"`
	Kernel    string         `json:"kernel"`
	Go        string         `json:"go"` // the benchmark's own Go
	P2ptun    map[string]any `json:"p2ptun"`
	Socat     string         `json:"socat,omitempty"`
	LoadStart []float64      `json:"load_start"` // 1, 5 and 15 minute load averages
	LoadEnd   []float64      `json:"load_end"`
	Date      string         `json:"date"`
}

// Settings are the knobs of the run, and the units.
type Settings struct {
	Rounds    int     `json:"rounds"`
	DurationS float64 `json:"duration_s"`
	Clients   int     `json:"new_conn_clients"`
	Paced     int     `json:"paced_conns_per_s"`
	Parallel  int     `json:"parallel_conns"`
	Held      []int   `json:"held"`
	HeldConc  int     `json:"held_concurrency"`
	FDLimit   uint64  `json:"fd_limit"`
	Quick     bool    `json:"quick"`
	ChunkKiB  int     `json:"chunk_kib"`
	Seconds   float64 `json:"run_seconds"`
	Limits    string  `json:"p2ptun_config"`
	Units     string  `json:"units"`
}

// RowResult is one row's measurements. Metrics and each daemon's
// Metrics are keyed by the names in Units; a metric that was not measured
// is absent, with the reason in Notes when there is one.
type RowResult struct {
	Key     string            `json:"key"`
	Name    string            `json:"name"`
	Skip    string            `json:"skip,omitempty"`
	Metrics map[string]*Stat  `json:"metrics"`
	Daemons []*DaemonResult   `json:"daemons"`
	Notes   map[string]string `json:"notes,omitempty"`
	Errors  []string          `json:"errors,omitempty"`
}

// DaemonResult holds the measurements of one process that carries the
// bytes (socat, or one of the two p2ptun daemons).
type DaemonResult struct {
	Name    string           `json:"name"`
	Metrics map[string]*Stat `json:"metrics"`
}

// Stat is one metric over the rounds.
type Stat struct {
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Samples []float64 `json:"samples"`
	Rounds  []int     `json:"rounds"` // the round of each sample, from 0
}

// Units says what every metric key of results.json means.
const Units = "mbps_*: 10^6 bytes/s through the row (up: client to target, down: target to client; _1 one connection, _8 eight at once); " +
	"conns_per_s: connections opened, echoed one byte, half-closed and closed, per second; ttfb_*_ms: from before dial to the echoed byte; " +
	"paced_ttfb_*_ms: the same, connections opened at the fixed rate paced_conns_per_s; " +
	"held_N: connections of N still echoing when all were open; daemons' cpu_s_per_gb_N: user+system CPU seconds per 10^9 bytes moved " +
	"(upload and download, N connections); idle_rss_mib: VmRSS of a fresh daemon with its tunnel up and one echo made through it; idle_anon_mib: its RssAnon, the daemon's own memory (the rest is its binary's pages); rss_kib_per_conn_N: (VmRSS holding N - idle) / N, in KiB; " +
	"a row's cpu_s_per_gb_*: all its daemons together. iperf_mbps_*: iperf3's MB/s received through the row toward an iperf3 server " +
	"(up: iperf3 -c; down: -R; _8: -P 8); iperf_cpu_s_per_gb: CPU-s/GB over those three, per daemon and for the row. " +
	"socat forks per connection: its CPU includes its children, and its memory is the PSS of it and its children."

// Add records v as a sample of round, on a nil s too, and returns s.
func (s *Stat) Add(round int, v float64) *Stat {
	if s == nil {
		s = &Stat{}
	}
	s.Samples = append(s.Samples, v)
	s.Rounds = append(s.Rounds, round)
	return s
}

// Summarize computes the median, minimum and maximum of the samples.
func (s *Stat) Summarize() {
	v := slices.Clone(s.Samples)
	slices.Sort(v)
	s.Min, s.Max = v[0], v[len(v)-1]
	if len(v)%2 == 1 {
		s.Median = v[len(v)/2]
	} else {
		s.Median = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
}

// Summarize summarizes every metric of the row and of its daemons.
func (r *RowResult) Summarize() {
	for _, s := range r.Metrics {
		s.Summarize()
	}
	for _, d := range r.Daemons {
		for _, s := range d.Metrics {
			s.Summarize()
		}
	}
}

// Daemon returns the results of the row's daemon name, added if new.
func (r *RowResult) Daemon(name string) *DaemonResult {
	for _, d := range r.Daemons {
		if d.Name == name {
			return d
		}
	}
	d := &DaemonResult{Name: name, Metrics: map[string]*Stat{}}
	r.Daemons = append(r.Daemons, d)
	return d
}

// AddError records what went wrong in a measurement of the row.
func (r *RowResult) AddError(e string) { r.Errors = append(r.Errors, e) }

// NewMachine describes this machine, and the p2ptun binary and socat
// measured on it.
func NewMachine(p2ptun string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadStart: LoadAvg(),
		Date: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch strings.TrimSpace(k) {
			case "model name":
				if m.CPU == "" {
					m.CPU = strings.TrimSpace(v)
				}
			case "flags":
				m.AESNI = m.AESNI || slices.Contains(strings.Fields(v), "aes")
			}
		}
	}
	if v, err := measure.StatusKiB("/proc/meminfo", "MemTotal"); err == nil {
		m.MemGiB = float64(int(v/(1<<20)*10)) / 10
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command(p2ptun, "version", "--json").Output(); err == nil {
		json.Unmarshal(out, &m.P2ptun)
	}
	if out, err := exec.Command("socat", "-V").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "socat version") {
				m.Socat = strings.TrimSpace(line)
			}
		}
	}
	return m
}

// LoadAvg is the 1, 5 and 15 minute load averages, or nil.
func LoadAvg() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	var l [3]float64
	fmt.Sscan(string(b), &l[0], &l[1], &l[2])
	return l[:]
}

// Num formats a value with three significant digits or so, as the
// tables do.
func Num(v float64) string { return num(v) }

// num formats a value with three significant digits or so.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

const none = "—"

// cell is a row metric's median, or a short reason it is missing.
func (r *RowResult) cell(metric string) string {
	if s := r.Metrics[metric]; s != nil {
		return num(s.Median)
	}
	return r.missing(metric)
}

func (r *RowResult) missing(metric string) string {
	if r.Skip != "" {
		return r.Skip
	}
	if n, ok := r.Notes[metric]; ok {
		if strings.HasPrefix(n, "fd limit") {
			return "fd limit"
		}
		return "not run"
	}
	return none
}

// daemonCell joins the daemons' medians of metric: "1.20 / 1.35" for
// forward / listen.
func (r *RowResult) daemonCell(metric string, scale float64) string {
	if len(r.Daemons) == 0 {
		return r.missingDaemon(metric, false)
	}
	var parts []string
	for _, d := range r.Daemons {
		if s := d.Metrics[metric]; s != nil {
			parts = append(parts, num(s.Median*scale))
		}
	}
	if len(parts) == 0 {
		return r.missingDaemon(metric, false)
	}
	return strings.Join(parts, " / ")
}

// missingDaemon says why a daemon metric is missing; long, for the chart,
// it also says when memory per connection is missing because not all
// connections were held (the table has a column for that).
func (r *RowResult) missingDaemon(metric string, long bool) string {
	if r.Skip != "" {
		return r.Skip
	}
	if m, ok := strings.CutPrefix(metric, "rss_kib_per_conn_"); ok {
		if s := r.Metrics["held_"+m]; s != nil && fmt.Sprint(s.Median) != m {
			if !long {
				return none
			}
			return fmt.Sprintf("%.0f of %s held", s.Median, m)
		}
		return r.missing("held_" + m)
	}
	return none
}

// HeldKey is the row metric of n held connections.
func HeldKey(n int) string { return fmt.Sprintf("held_%d", n) }

func (r *RowResult) heldCell(n int) string {
	s := r.Metrics[HeldKey(n)]
	if s == nil {
		return r.missing(HeldKey(n))
	}
	if int(s.Median) == n {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%.0f of %d", s.Median, n)
}

// Table renders the results as plain text: results.txt.
func Table(res *Results) string {
	var b bytes.Buffer
	m, st := res.Machine, res.Settings
	fmt.Fprintf(&b, "p2ptun %v (go-libp2p %v) on %s, %d cores, Linux %s, %s\n",
		m.P2ptun["Version"], m.P2ptun["Libp2p"], m.CPU, m.Cores, m.Kernel, m.Go)
	fmt.Fprintf(&b, "%d rounds, interleaved; medians. %.1fs per measurement. Load average %s at the start, %s at the end.\n\n",
		st.Rounds, st.DurationS, LoadString(m.LoadStart), LoadString(m.LoadEnd))

	longest := 0
	for _, r := range res.Rows {
		longest = max(longest, len(r.Name))
	}
	nameW := 2*longest + len(" / ") // a ratio row names two rows
	// Every first cell is padded to one width, so that the names read
	// left-aligned while the numbers are right-aligned.
	pad := func(s string) string { return s + strings.Repeat(" ", max(0, nameW-utf8.RuneCountInString(s))) }

	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, pad("Throughput, MB/s")+"\t1 conn up\t1 conn down\t8 conns up\t8 conns down\tCPU-s/GB, 1 conn\tCPU-s/GB, 8 conns\t")
	for _, r := range res.Rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", pad(r.Name), r.cell("mbps_up_1"), r.cell("mbps_down_1"),
			r.cell("mbps_up_8"), r.cell("mbps_down_8"), r.daemonCell("cpu_s_per_gb_1", 1), r.daemonCell("cpu_s_per_gb_8", 1))
	}
	w.Flush()
	b.WriteString("\n")

	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, pad("Connections")+"\tnew/s\tTTFB p50 ms\tTTFB p99 ms\tp99 at %d/s\t", st.Paced)
	for _, n := range st.Held {
		fmt.Fprintf(w, "held %d\tKiB/conn\t", n)
	}
	fmt.Fprintln(w, "idle RSS MiB\tof it anon\t")
	for _, r := range res.Rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t", pad(r.Name), r.cell("conns_per_s"), r.cell("ttfb_p50_ms"), r.cell("ttfb_p99_ms"), r.cell("paced_ttfb_p99_ms"))
		for _, n := range st.Held {
			fmt.Fprintf(w, "%s\t%s\t", r.heldCell(n), r.daemonCell(fmt.Sprintf("rss_kib_per_conn_%d", n), 1))
		}
		fmt.Fprintf(w, "%s\t%s\t\n", r.daemonCell("idle_rss_mib", 1), r.daemonCell("idle_anon_mib", 1))
	}
	w.Flush()
	b.WriteString("\n")

	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, pad("Ratios, per round")+"\t")
	for _, rm := range RatioMetrics {
		fmt.Fprintf(w, "%s\t", rm.Title)
	}
	fmt.Fprintln(w)
	names := map[string]string{}
	for _, r := range res.Rows {
		names[r.Key] = r.Name
	}
	var pairs [][2]string
	for _, rt := range res.Ratios {
		if strings.HasPrefix(rt.Metric, "iperf_") {
			continue // iperf.go's table
		}
		if p := [2]string{rt.Row, rt.Base}; !slices.Contains(pairs, p) {
			pairs = append(pairs, p)
		}
	}
	for _, p := range pairs {
		fmt.Fprintf(w, "%s\t", pad(names[p[0]]+" / "+names[p[1]]))
		for _, rm := range RatioMetrics {
			if v, ok := res.RatioOf(p[0], p[1], rm.Key); ok {
				fmt.Fprintf(w, "%.2f×\t", v)
			} else {
				fmt.Fprintf(w, "%s\t", none)
			}
		}
		fmt.Fprintln(w)
	}
	w.Flush()

	b.WriteString("\nCPU-s/GB, KiB/conn and idle RSS are per daemon: forward / listen for p2ptun.\n")
	for _, r := range res.Rows {
		var keys []string
		for k := range r.Notes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s, %s: %s\n", r.Name, k, r.Notes[k])
		}
		for _, e := range r.Errors {
			// The daemons' log summary is in results.json.
			e, _, _ = strings.Cut(e, "; daemon logs:")
			fmt.Fprintf(&b, "%s: error: %s\n", r.Name, e)
		}
	}
	b.WriteString(formatIperf3(res, pad))
	b.WriteString(formatUDP(res.UDP))
	if hasGoals(res) {
		b.WriteString(formatGoals(res))
	}
	return b.String()
}

// LoadString is a load average's three numbers, or "unknown".
func LoadString(l []float64) string {
	if len(l) < 3 {
		return "unknown"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2])
}

// ReadJSON decodes the results.json at from into v (a *Results, or
// bench/wan's own).
func ReadJSON(from string, v any) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	return nil
}

// Write writes results.json, the table as results.txt and the chart as
// results.svg to dir; colors maps a row's key to its bars' color.
func Write(dir string, res *Results, table string, colors map[string]string) error {
	j, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"results.json": append(j, '\n'),
		"results.txt":  []byte(table),
		"results.svg":  chart(res, colors),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
