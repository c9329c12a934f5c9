package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// grafanaDashboard is contrib/grafana's dashboard.
var grafanaDashboard = filepath.Join("..", "contrib", "grafana", "p2ptun.json")

// dashboardQueries returns every PromQL query in a Grafana dashboard: the
// panels' targets' expr fields and the query variables' queries.
func dashboardQueries(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(k, x)
			}
		case []any:
			for _, x := range v {
				walk(key, x)
			}
		case string:
			if key == "expr" || key == "query" && strings.Contains(v, "(") {
				out = append(out, v)
			}
		}
	}
	walk("", v)
	return out
}

var (
	// metricRE finds the metrics a query names: p2ptun's own, and the
	// Go runtime's, the process's and libp2p's that the daemon exports.
	metricRE = regexp.MustCompile(`\b(?:p2ptun|go|process|libp2p)_[a-zA-Z0-9_]+`)
	// labelRE finds the labels a query matches on or aggregates by.
	labelRE = regexp.MustCompile(`(?:by \(([^)]*)\))|(?:[{,]\s*([a-z_]+)\s*=~?)`)
)

// The Grafana dashboard is valid JSON, and every query names metrics and
// labels that a real daemon exports: scraped from one with a tunnel of
// each kind, a forward with two peers and a stream.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(grafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s is not valid JSON: %v", grafanaDashboard, err)
	}
	if dash["title"] == "" || dash["panels"] == nil {
		t.Fatalf("%s has no title or panels", grafanaDashboard)
	}
	queries := dashboardQueries(t, dash)
	if len(queries) < 10 {
		t.Fatalf("found %d queries in the dashboard, want its panels' and variables'", len(queries))
	}

	a, b, c := startDaemon(t, "--metrics", ":0"), startDaemon(t), startDaemon(t)
	conn := tunnelled(t, a, b, "/x/graf")
	harness.Echoes(t, conn, "grafana")
	if _, errOut, code := c.CLI(t, "listen", "/x/graf", echoTarget(t), "--allow", a.ID); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := a.CLI(t, "forward", "/x/graf", "127.0.0.1:0", b.Addresses[0], c.Addresses[0]); code != 0 {
		t.Fatal(errOut)
	}
	var fams map[string]*dto.MetricFamily
	waitUntil(t, "the stream's bytes in the metrics", func() bool {
		fams = harness.Scrape(t, a.Metrics)
		v, _ := sample(fams, "p2ptun_tunnel_bytes_in_total", "peer", b.ID)
		return v == 7
	})
	// A histogram's series are its family's name and a suffix.
	family := func(name string) *dto.MetricFamily {
		if f := fams[name]; f != nil {
			return f
		}
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if f := fams[strings.TrimSuffix(name, suf)]; f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
				return f
			}
		}
		return nil
	}
	for _, q := range queries {
		names := metricRE.FindAllString(q, -1)
		if len(names) == 0 {
			t.Errorf("query names no metric this test knows: %s", q)
		}
		labels := map[string]bool{"le": true, "job": true, "instance": true} // le: histograms; job, instance: Prometheus's own
		for _, n := range names {
			f := family(n)
			if f == nil {
				t.Errorf("query names %s, which the daemon does not export: %s", n, q)
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = true
				}
			}
		}
		for _, m := range labelRE.FindAllStringSubmatch(q, -1) {
			for _, l := range slices.Concat(strings.Split(m[1], ","), []string{m[2]}) {
				if l = strings.TrimSpace(l); l != "" && !labels[l] {
					t.Errorf("query uses label %q, which none of %v has: %s", l, names, q)
				}
			}
		}
	}
}
