//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/bench/report"
)

// stat is a summarized Stat of one sample a round.
func stat(vs ...float64) *report.Stat {
	var s *report.Stat
	for i, v := range vs {
		s = s.Add(i, v)
	}
	s.Summarize()
	return s
}

func sampleResults() *Results {
	return &Results{
		Settings: Settings{Rounds: 3, Seconds: 2, Warm: 3, Units: Units},
		Links: []*LinkResult{{
			Name: "100ms 1Gbit/s 0.5% loss", RTTms: 100, RateMbps: 1000, LossPct: 0.5, MTU: 9000,
			Paths: []*PathResult{
				{Key: "tcp", Name: "plain TCP (socat)", Metrics: map[string]*report.Stat{
					"mbps_1": stat(400, 500, 450), "mbps_8": stat(900, 950, 920), "warm_ms": stat(201, 202, 203), "cold_ms": stat(201, 202, 203)}},
				{Key: "p2ptun-tcp", Name: "p2ptun TCP", Metrics: map[string]*report.Stat{
					"mbps_1": stat(405, 420, 410), "mbps_8": stat(600, 620, 610), "warm_ms": stat(101, 101.5, 102.5), "cold_ms": stat(500, 510, 505)}},
				{Key: "p2ptun-quic", Name: "p2ptun QUIC", Metrics: map[string]*report.Stat{
					"mbps_1": stat(200), "mbps_8": stat(700), "warm_ms": stat(105)},
					Errors: []string{"round 1, cold first byte: boom"}},
				{Key: "kubo", Name: "kubo ipfs p2p", Skip: "skipped: ipfs (kubo) is not on PATH", Metrics: map[string]*report.Stat{}},
			},
		}},
	}
}

func TestGoals(t *testing.T) {
	res := sampleResults()
	res.ComputeGoals()
	want := map[string]string{ // goal: value, verdict
		"p2ptun-tcp: one stream / plain TCP":           "0.911 true",
		"p2ptun-tcp: warm first byte − RTT, ms":        "1.500 true",
		"p2ptun-tcp: cold connect+first byte, in RTTs": "5.050 nil",
		"p2ptun-quic: one stream / plain TCP":          "0.444 false",
		"p2ptun-quic: warm first byte − RTT, ms":       "5.000 false",
		"8 streams with loss: QUIC / TCP":              "1.148 true",
	}
	got := map[string]string{}
	for _, g := range res.Goals {
		v := "nil"
		if g.Met != nil {
			v = map[bool]string{true: "true", false: "false"}[*g.Met]
		}
		got[g.Goal] = strings.TrimSpace(strings.Join([]string{fmtF(g.Value), v}, " "))
	}
	if len(got) != len(want) {
		t.Errorf("goals %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("goal %q = %q, want %q", k, got[k], v)
		}
	}
}

func fmtF(v float64) string {
	b, _ := json.Marshal(float64(int(v*1000+0.5)) / 1000)
	s := string(b)
	if !strings.Contains(s, ".") {
		s += "."
	}
	for len(s[strings.Index(s, ".")+1:]) < 3 {
		s += "0"
	}
	return s
}

func TestTable(t *testing.T) {
	res := sampleResults()
	res.ComputeGoals()
	table := Table(res)
	for _, want := range []string{
		"100ms 1Gbit/s 0.5% loss  plain TCP (socat)",
		"450 (400–500)", // median (min–max)
		"102 (101–102)", // warm: three digits, half to even
		"skipped",       // kubo's cells
		"NOT met", "met", "stated",
		"p2ptun QUIC: round 1, cold first byte: boom",
		"kubo ipfs p2p: skipped: ipfs (kubo) is not on PATH",
		"median (min–max) over 3 round(s)",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

// TestRender: results.json written by a run renders to the same table
// and chart.
func TestRender(t *testing.T) {
	res := sampleResults()
	res.ComputeGoals()
	dir := t.TempDir()
	if err := Write(dir, res, Table(res)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := render(filepath.Join(dir, "results.json"), filepath.Join(dir, "again"), &out); err != nil {
		t.Fatal(err)
	}
	txt, err := os.ReadFile(filepath.Join(dir, "results.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(txt) {
		t.Errorf("rendered again:\n%s\nwant:\n%s", out.String(), txt)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "results.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if again, err := os.ReadFile(filepath.Join(dir, "again", "results.svg")); err != nil || !bytes.Equal(again, svg) {
		t.Errorf("results.svg rendered again differs (%v):\n%s\nwant:\n%s", err, again, svg)
	}
	var back Results
	b, _ := os.ReadFile(filepath.Join(dir, "again", "results.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Links) != 1 || back.Links[0].Paths[1].Metrics["mbps_1"].Median != 410 {
		t.Errorf("results.json round trip: %v %+v", err, back)
	}
}

func TestParseFlags(t *testing.T) {
	for _, args := range [][]string{{"-rounds", "0"}, {"-seconds", "-1"}, {"extra"}, {"-nosuch"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	cfg, err := parseFlags([]string{"-quick"}, io.Discard)
	if err != nil || cfg.Rounds != 1 || cfg.Seconds != 1 || len(links(true)) != 1 {
		t.Errorf("-quick: %+v, %v", cfg, err)
	}
	if n := len(links(false)); n != 8 {
		t.Errorf("%d links, want 8: RTT 20 and 100 ms × loss 0 and 0.5 %% × 100 Mbit/s and 1 Gbit/s", n)
	}
}

// TestChart: results.svg is well-formed XML and names every link and
// path, and says why a path has no bars.
func TestChart(t *testing.T) {
	res := sampleResults()
	res.Links = append(res.Links, &LinkResult{Name: "20ms 100Mbit/s 0% loss", RTTms: 20, RateMbps: 100, MTU: 1500,
		Paths: []*PathResult{{Key: "tcp", Name: "plain TCP (socat)", Metrics: map[string]*report.Stat{"mbps_1": stat(90)}}}})
	dir := t.TempDir()
	if err := Write(dir, res, Table(res)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.svg"))
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]bool{}
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("results.svg is not well-formed XML: %v\n%s", err, b)
		}
		if c, ok := tok.(xml.CharData); ok {
			texts[strings.TrimSpace(string(c))] = true
		}
	}
	for _, want := range []string{
		"100ms 1Gbit/s 0.5% loss", "20ms 100Mbit/s 0% loss", // the links
		"plain TCP (socat)", "p2ptun TCP", "p2ptun QUIC", "kubo ipfs p2p", // the paths
		"410 (0.91× TCP)", // a median, and its ratio to plain TCP
		"1.50",            // p2ptun TCP's warm first byte − RTT, ms
		"5.05",            // its cold connect+first byte, in RTTs
		"skipped",         // kubo
		"not measured",    // p2ptun QUIC's cold connect, the short link's 8 streams
	} {
		if !texts[want] {
			t.Errorf("results.svg has no text %q:\n%s", want, b)
		}
	}
}
