package node

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/spec"
)

// families is a parsed /metrics page.
type families map[string]*dto.MetricFamily

// scrape serves reg's metrics over HTTP, as the daemon does, fetches them
// once and parses the text format.
func scrape(t *testing.T, reg prometheus.Gatherer) families {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	return harness.Scrape(t, srv.URL+"/metrics")
}

// value returns the value of the sample of family name whose labels
// include want: a counter's or gauge's value, a histogram's count.
func (f families) value(name string, want ...string) (float64, bool) {
	return harness.MetricValue(f[name], want...)
}

// expect polls reg until the sample equals want, then checks it is exactly
// want (a counter that overshoots fails too).
func expect(t *testing.T, reg prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s%v = %v", name, labels, want), func() (bool, string) {
		v, ok := scrape(t, reg).value(name, labels...)
		return ok && v == want, fmt.Sprintf("found %v, value %v", ok, v)
	})
}

func metricsNode(t *testing.T) (testNode, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return newNodeWith(t, func(o *Options) { o.Metrics = reg }), reg
}

func TestMetricsCountBytesStreamsAndErrors(t *testing.T) {
	a, aReg := metricsNode(t)
	b, bReg := metricsNode(t)
	ctx := context.Background()
	in, err := b.listenReq(ctx, spec.Request{Protocol: "/x/metrics", Target: server(t, echo), Allow: []string{a.id()}})
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/metrics", ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: b.fullAddr()})
	if err != nil {
		t.Fatal(err)
	}
	aTunnel := []string{"tunnel", strconv.FormatUint(fwd.ID, 10), "kind", "forward", "protocol", "/x/metrics"}
	bTunnel := []string{"tunnel", strconv.FormatUint(in.ID, 10), "kind", "listen", "protocol", "/x/metrics"}
	aPeer := append(aTunnel, "peer", b.id())
	bPeer := append(bTunnel, "peer", a.id())
	expect(t, aReg, 0, "p2ptun_streams_total", aTunnel...)

	// A live stream's bytes show while it runs.
	c := dial(t, hostPort(t, fwd.ListenAddress))
	msg := strings.Repeat("metrics!", 125) // 1000 bytes
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
		t.Fatal(err)
	}
	expect(t, aReg, 1000, "p2ptun_tunnel_bytes_out_total", aPeer...)
	expect(t, aReg, 1000, "p2ptun_tunnel_bytes_in_total", aPeer...)
	expect(t, bReg, 1000, "p2ptun_tunnel_bytes_in_total", bPeer...)
	expect(t, bReg, 1000, "p2ptun_tunnel_bytes_out_total", bPeer...)
	expect(t, aReg, 1, "p2ptun_streams_open", aTunnel...)

	// Once it closes its bytes move to the closed totals, unchanged.
	if _, err := io.WriteString(c, msg[:500]); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	if got, err := io.ReadAll(c); err != nil || len(got) != 500 {
		t.Fatalf("echo after half-close: %d bytes, %v", len(got), err)
	}
	expect(t, aReg, 0, "p2ptun_streams_open", aTunnel...)
	expect(t, bReg, 0, "p2ptun_streams_open", bTunnel...)
	fa, fb := scrape(t, aReg), scrape(t, bReg)
	for _, c := range []struct {
		f      families
		name   string
		labels []string
		want   float64
	}{
		{fa, "p2ptun_tunnel_bytes_out_total", aPeer, 1500},
		{fa, "p2ptun_tunnel_bytes_in_total", aPeer, 1500},
		{fb, "p2ptun_tunnel_bytes_in_total", bPeer, 1500},
		{fb, "p2ptun_tunnel_bytes_out_total", bPeer, 1500},
		{fa, "p2ptun_streams_total", aTunnel, 1},
		{fb, "p2ptun_streams_total", bTunnel, 1},
		{fa, "p2ptun_stream_setup_seconds", []string{"kind", "forward"}, 1},
		{fb, "p2ptun_stream_setup_seconds", []string{"kind", "listen"}, 1},
		{fa, "p2ptun_stream_errors_total", []string{"cause", "reset"}, 0},
		{fa, "p2ptun_tunnels_up", []string{"kind", "forward"}, 1},
		{fb, "p2ptun_tunnels_up", []string{"kind", "listen"}, 1},
		{fa, "p2ptun_peers_connected", nil, 1},
	} {
		if v, ok := c.f.value(c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}

	// A refused target counts as target_dial on both sides: b resets the
	// stream with that cause, and a reads it.
	refused := tunnel(t, a, b, "/x/refused", freePort(t))
	expectReset(t, refused)
	expect(t, bReg, 1, "p2ptun_stream_errors_total", "cause", "target_dial")
	expect(t, aReg, 1, "p2ptun_stream_errors_total", "cause", "target_dial")
	expect(t, aReg, 0, "p2ptun_stream_errors_total", "cause", "reset")

	// go-libp2p's own metrics, the resource manager's among them.
	for _, prefix := range []string{"libp2p_rcmgr_", "libp2p_swarm_"} {
		found := false
		for name := range fa {
			found = found || strings.HasPrefix(name, prefix)
		}
		if !found {
			t.Errorf("no %s* metric family on a's /metrics", prefix)
		}
	}

	// A closed tunnel's series go away.
	if _, err := a.CloseListeners(ctx, CloseRequest{Protocol: "/x/metrics"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := scrape(t, aReg).value("p2ptun_streams_total", aTunnel...); ok {
		t.Error("streams_total of a closed tunnel is still exported")
	}
}

func TestNodeWithoutMetricsHasNone(t *testing.T) {
	if n := newNode(t); n.metrics != nil {
		t.Fatal("a node without Options.Metrics has metrics")
	}
}
