package cli

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// scrapeURL fetches and parses a /metrics page.
func scrapeURL(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	return harness.Scrape(t, url)
}

// sample returns the sample of family name whose label label is value.
func sample(fams map[string]*dto.MetricFamily, name, label, value string) (float64, bool) {
	return harness.MetricValue(fams[name], label, value)
}

func TestDaemonServesMetrics(t *testing.T) {
	a := startDaemon(t, "--metrics", ":0")
	b := startDaemon(t)
	// A host-less address binds loopback, never every interface.
	if !strings.HasPrefix(a.Metrics, "http://127.0.0.1:") || !strings.HasSuffix(a.Metrics, "/metrics") {
		t.Fatalf("ready file metrics = %q, want http://127.0.0.1:PORT/metrics", a.Metrics)
	}
	if !strings.Contains(a.Logs.String(), "metrics="+a.Metrics) {
		t.Errorf("daemon ready line does not name the metrics URL:\n%s", a.Logs)
	}
	if b.Metrics != "" {
		t.Errorf("daemon without --metrics has a metrics URL %q", b.Metrics)
	}

	c := tunnelled(t, a, b, "/x/m")
	msg := strings.Repeat("x", 4321)
	harness.Echoes(t, c, msg)
	var fams map[string]*dto.MetricFamily
	// Each counter moves just after its write returns: wait for both.
	waitUntil(t, "the live stream's bytes in and out in the metrics", func() bool {
		fams = scrapeURL(t, a.Metrics)
		in, _ := sample(fams, "p2ptun_tunnel_bytes_in_total", "peer", b.ID)
		out, _ := sample(fams, "p2ptun_tunnel_bytes_out_total", "peer", b.ID)
		return in == float64(len(msg)) && out == float64(len(msg))
	})
	for _, name := range []string{"go_goroutines", "process_open_fds", "libp2p_rcmgr_limit", "p2ptun_streams_open", "p2ptun_peers_connected"} {
		if fams[name] == nil {
			t.Errorf("no %s on /metrics", name)
		}
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(strings.TrimSuffix(a.Metrics, "metrics") + "other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: %s, want 404", resp.Status)
	}
}

func TestRelayMetricsFromTheEnvironment(t *testing.T) {
	t.Setenv("P2PTUN_METRICS", "/ip4/127.0.0.1/tcp/0")
	r := startCommand(t, "relay", "--allow-all")
	if !strings.HasPrefix(r.Metrics, "http://127.0.0.1:") {
		t.Fatalf("relay metrics URL = %q", r.Metrics)
	}
	if v, ok := sample(scrapeURL(t, r.Metrics), "p2ptun_tunnels_up", "kind", "listen"); !ok || v != 0 {
		t.Fatalf("p2ptun_tunnels_up{kind=listen} = %v (%v), want 0", v, ok)
	}
}

func TestMetricsPortInUseOrBadAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	home := harness.TempHome(t)
	if _, errOut, code := run(t, "--home", home, "init"); code != 0 {
		t.Fatal(errOut)
	}
	ready := filepath.Join(filepath.Dir(home), "ready.json")
	daemon := func(extra ...string) (string, int) {
		t.Helper()
		_, errOut, code := run(t, append([]string{"--home", home, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0", "--ready-file", ready}, extra...)...)
		return errOut, code
	}
	for _, tc := range []struct {
		name   string
		args   []string
		config string
		code   int
		want   string
	}{
		{"flag port in use", []string{"--metrics", busy.Addr().String()}, "", ExitConflict, "address already in use: --metrics " + busy.Addr().String()},
		{"config port in use", nil, "[metrics]\nlisten = \"" + busy.Addr().String() + "\"\n", ExitConflict, "address already in use"},
		{"flag not an address", []string{"--metrics", "9464"}, "", ExitUsage, "--metrics: \"9464\" is neither host:port nor a multiaddr"},
		{"config not an address", nil, "[metrics]\nlisten = \"/ip4/127.0.0.1/udp/1\"\n", ExitConfig, "metrics.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(home, "config.toml"), []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			errOut, code := daemon(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
			if !strings.HasPrefix(errOut, "p2ptun: ") || strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr should be one line starting with \"p2ptun: \", got %q", errOut)
			}
			// Nothing was left running or behind.
			for _, p := range []string{filepath.Join(home, "api.sock"), ready} {
				if _, err := os.Lstat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a failed start", p)
				}
			}
		})
	}
}

// TestProfilesOnlyWithPprof: /debug/pprof is served only with --pprof,
// and only on a loopback metrics address (daemon's TestLoopbackOnly checks
// which addresses are).
func TestProfilesOnlyWithPprof(t *testing.T) {
	profile := func(t *testing.T, metricsURL string) (int, string) {
		t.Helper()
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := hc.Get(strings.TrimSuffix(metricsURL, "/metrics") + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	t.Run("without --pprof", func(t *testing.T) {
		d := startDaemon(t, "--metrics", "127.0.0.1:0")
		if code, body := profile(t, d.Metrics); code != http.StatusNotFound {
			t.Fatalf("GET /debug/pprof/goroutine without --pprof: %d\n%.200s", code, body)
		}
	})
	t.Run("with --pprof", func(t *testing.T) {
		d := startDaemon(t, "--metrics", "127.0.0.1:0", "--pprof")
		if code, body := profile(t, d.Metrics); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
			t.Fatalf("GET /debug/pprof/goroutine with --pprof: %d\n%.200s", code, body)
		}
	})
	for name, args := range map[string][]string{
		"not on loopback": {"--metrics", "0.0.0.0:0", "--pprof"},
		"without metrics": {"--pprof"},
	} {
		t.Run(name, func(t *testing.T) {
			_, errOut, code := run(t, append([]string{"--home", harness.TempHome(t), "daemon", "--ephemeral"}, args...)...)
			if code != ExitUsage || strings.Count(errOut, "p2ptun:") != 1 || !strings.Contains(errOut, "--pprof") {
				t.Fatalf("daemon %v: exit %d, want %d with one line naming --pprof:\n%s", args, code, ExitUsage, errOut)
			}
		})
	}
}

// Every per-tunnel series carries a name label: a config tunnel's name,
// or for an unnamed runtime tunnel its kind, protocol and address, which
// stay the same across restarts while the tunnel label (an ID) does not.
func TestMetricsNameLabel(t *testing.T) {
	b := startDaemon(t)
	aHome, aID := initHome(t)
	if _, errOut, code := b.CLI(t, "listen", "/x/echo", echoTarget(t), "--allow", aID); code != 0 {
		t.Fatal(errOut)
	}
	appendConfig(t, aHome, forwardTable("web", "/ip4/127.0.0.1/tcp/0", b.Addresses[0]))
	a := startIn(t, aHome, "daemon", "--metrics", ":0")
	out, errOut, code := a.CLI(t, "forward", "/x/echo", "127.0.0.1:0", b.Addresses[0])
	if code != 0 {
		t.Fatal(errOut)
	}
	runtime := "forward /x/echo " + listenAddrOf(t, a, harness.HostPort(t, out))
	for _, addr := range []string{named(t, a, "web"), harness.HostPort(t, out)} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		harness.Echoes(t, c, "named")
		c.Close()
	}
	var fams map[string]*dto.MetricFamily
	waitUntil(t, "both tunnels' bytes in the metrics", func() bool {
		fams = scrapeURL(t, a.Metrics)
		web, _ := sample(fams, "p2ptun_tunnel_bytes_in_total", "name", "web")
		rt, _ := sample(fams, "p2ptun_tunnel_bytes_in_total", "name", runtime)
		return web == 5 && rt == 5
	})
	for _, fam := range []string{"p2ptun_tunnel_bytes_in_total", "p2ptun_tunnel_bytes_out_total", "p2ptun_streams_open", "p2ptun_streams_total"} {
		for _, name := range []string{"web", runtime} {
			if _, ok := sample(fams, fam, "name", name); !ok {
				t.Errorf("no %s{name=%q}", fam, name)
			}
		}
		for _, m := range fams[fam].GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			if have["name"] == "" || have["tunnel"] == "" {
				t.Errorf("%s sample without a name or tunnel label: %v", fam, m.GetLabel())
			}
		}
	}
}

// listenAddrOf is the ListenAddress of d's forward bound to hostPort.
func listenAddrOf(t *testing.T, d *harness.Daemon, hostPort string) string {
	t.Helper()
	for _, l := range lsJSON(t, d) {
		if l.Kind == "forward" && strings.HasSuffix(l.ListenAddress, "/tcp/"+hostPort[strings.LastIndex(hostPort, ":")+1:]) {
			return l.ListenAddress
		}
	}
	t.Fatalf("no forward on %s", hostPort)
	return ""
}
