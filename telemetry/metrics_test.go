package telemetry

import (
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/streams"
)

// value gathers reg and returns the value of the counter or gauge of
// family name whose labels include want (name, value pairs).
func value(t *testing.T, reg prometheus.Gatherer, name string, want ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range fams {
		if fam.GetName() != name {
			continue
		}
		if v, ok := harness.MetricValue(fam, want...); ok {
			return v
		}
	}
	t.Fatalf("no %s%v", name, want)
	return 0
}

func TestMetricsNeverGoBackwards(t *testing.T) {
	var live []registry.StreamInfo
	m := NewMetrics(func() []registry.StreamInfo { return live }, func() []registry.Listener { return nil }, func() int { return 0 })
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	bytesOut := func() float64 {
		t.Helper()
		return value(t, reg, "p2ptun_tunnel_bytes_out_total", "tunnel", "1", "peer", "P")
	}
	s := registry.StreamInfo{ID: 7, ListenerID: 1, Kind: registry.KindForward, Protocol: "/x/a", Peer: "P"}
	m.TunnelUp(registry.Listener{ID: 1, Kind: registry.KindForward, Protocol: "/x/a"})
	m.StreamOpened(s)
	s.BytesOut = 10
	live = []registry.StreamInfo{s}
	if v := bytesOut(); v != 10 {
		t.Fatalf("live stream: bytes out = %v, want 10", v)
	}
	// The stream has left the registry but its Closed hook has not run:
	// the last value seen still counts.
	live = nil
	if v := bytesOut(); v != 10 {
		t.Fatalf("between deregistration and Closed: bytes out = %v, want 10", v)
	}
	s.BytesOut = 12
	m.StreamClosed(s, streams.ErrAborted)
	if v := bytesOut(); v != 12 {
		t.Fatalf("closed stream: bytes out = %v, want 12", v)
	}
	if v := value(t, reg, "p2ptun_stream_errors_total", "cause", "reset"); v != 0 {
		t.Errorf("an aborted stream counted as reset: %v", v)
	}
	// A second stream of the same tunnel and peer adds to the total.
	s2 := registry.StreamInfo{ID: 8, ListenerID: 1, Kind: registry.KindForward, Protocol: "/x/a", Peer: "P", BytesOut: 5}
	m.StreamOpened(s2)
	live = []registry.StreamInfo{s2}
	if v := bytesOut(); v != 17 {
		t.Fatalf("closed plus live: bytes out = %v, want 17", v)
	}
}

func TestMetricsOffCostsNothing(t *testing.T) {
	var m *Metrics // metrics off: every hook is a no-op
	m.TunnelUp(registry.Listener{})
	m.TunnelDown(registry.Listener{})
	m.StreamOpened(registry.StreamInfo{})
	m.StreamClosed(registry.StreamInfo{}, io.EOF)
	m.StreamFailed(registry.Failure{})
}
