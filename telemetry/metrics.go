package telemetry

import (
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/socks"
)

// Failure causes, the cause label of p2ptun_stream_errors_total: those of
// registry.Failure (a refusal's, from package refusal, and the forward's
// own, and a SOCKS request's), plus "reset" for a stream that ended in an
// error without a cause.
var errorCauses = func() []string {
	out := []string{"stream_open", "unreachable", "no_listener", "reset"}
	for _, c := range refusal.Causes() {
		out = append(out, string(c))
	}
	return append(out, socks.Causes()...)
}()

var (
	// tunnel is the listener's ID, which changes when the daemon
	// restarts; name is its registry.Listener.Label, which does not.
	tunnelLabels = []string{"tunnel", "name", "kind", "protocol"}
	peerLabels   = append(append([]string{}, tunnelLabels...), "peer")

	descBytesIn = prometheus.NewDesc("p2ptun_tunnel_bytes_in_total",
		"Bytes received from the peer and written to the local side, live streams included.", peerLabels, nil)
	descBytesOut = prometheus.NewDesc("p2ptun_tunnel_bytes_out_total",
		"Bytes read from the local side and sent to the peer, live streams included.", peerLabels, nil)
	descStreamsOpen = prometheus.NewDesc("p2ptun_streams_open",
		"Live streams (tunnelled TCP connections) of a tunnel.", tunnelLabels, nil)
	descStreamsTotal = prometheus.NewDesc("p2ptun_streams_total",
		"Streams a tunnel has opened since it came up.", tunnelLabels, nil)
	descTunnelsUp = prometheus.NewDesc("p2ptun_tunnels_up",
		"Listeners and forwards that are up.", []string{"kind"}, nil)
	descPeers = prometheus.NewDesc("p2ptun_peers_connected",
		"Peers with at least one open libp2p connection.", nil, nil)
	descForwardPeerUp = prometheus.NewDesc("p2ptun_forward_peer_up",
		"1 if a peer of a forward with several is up (new connections may go to it), 0 if it is down.", peerLabels, nil)
)

// Metrics feeds p2ptun's Prometheus metrics from the registries' hooks. It
// is a prometheus.Collector: byte counters are computed at scrape time from
// the closed streams' totals plus the live streams' counters, so a long
// transfer shows while it runs. A nil *Metrics (metrics off) ignores every
// hook.
type Metrics struct {
	// The live streams, the tunnels that are up and the connected peers'
	// count, read at each scrape.
	list    func() []registry.StreamInfo
	tunnels func() []registry.Listener
	peers   func() int

	errors   *prometheus.CounterVec
	setup    *prometheus.HistogramVec
	drops    *prometheus.CounterVec // UDP datagrams dropped (udp.go)
	peerDown *prometheus.CounterVec // forwards' peers going down; its own lock

	mu     sync.Mutex
	byID   map[uint64]*tunnelStats // tunnels that are up or have streams
	live   map[uint64]*liveStream  // opened and not yet closed, by stream ID
	closed map[streamKey]*[2]int64 // closed streams' bytes in and out
}

type tunnelStats struct {
	name, kind, protocol string
	opened               uint64
}

type streamKey struct {
	tunnel uint64
	peer   string
}

// liveStream remembers the counters a scrape last saw, for the moment
// between a stream leaving the registry and its Closed hook, when it is in
// neither place: reporting less then would make a counter go backwards.
type liveStream struct {
	key     streamKey
	in, out int64
}

// NewMetrics returns the metrics of a node whose live streams list
// returns, whose tunnels that are up tunnels returns, and which has peers
// connected peers. Register them to have them scraped.
func NewMetrics(list func() []registry.StreamInfo, tunnels func() []registry.Listener, peers func() int) *Metrics {
	m := &Metrics{
		list: list, tunnels: tunnels, peers: peers,
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "p2ptun_stream_errors_total",
			Help: "Connections refused or not set up, and streams that ended in an error (reset, or the cause the peer sent), by cause: " + strings.Join(errorCauses, ", ") + ".",
		}, []string{"cause"}),
		setup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "p2ptun_stream_setup_seconds",
			Help:    "Time to set a stream up before bytes flow: opening the libp2p stream (forward) or dialing the target (listen).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"kind"}),
		drops: newDatagramDrops(),
		peerDown: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "p2ptun_forward_peer_down_total",
			Help: "Times a peer of a forward with several went down (its connection closed, or a stream open to it failed): its new connections went to the next peer.",
		}, peerLabels),
		byID:   make(map[uint64]*tunnelStats),
		live:   make(map[uint64]*liveStream),
		closed: make(map[streamKey]*[2]int64),
	}
	for _, c := range errorCauses {
		m.errors.WithLabelValues(c)
	}
	for _, k := range []registry.Kind{registry.KindListen, registry.KindForward} {
		m.setup.WithLabelValues(string(k))
	}
	return m
}

// Register registers m's collectors with reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m, m.errors, m.setup, m.drops, m.peerDown} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// tunnel returns the stats of tunnel id, creating them (named l.Label()
// unless TunnelUp named them first); m.mu must be held.
func (m *Metrics) tunnel(id uint64, l registry.Listener) *tunnelStats {
	t := m.byID[id]
	if t == nil {
		t = &tunnelStats{name: l.Label(), kind: string(l.Kind), protocol: l.Protocol}
		m.byID[id] = t
	}
	return t
}

// streamTunnel is the tunnel of stream s, as far as s tells.
func streamTunnel(s registry.StreamInfo) registry.Listener {
	return registry.Listener{ID: s.ListenerID, Kind: s.Kind, Protocol: s.Protocol}
}

// labels are the tunnelLabels values of l.
func labels(l registry.Listener) []string {
	return []string{strconv.FormatUint(l.ID, 10), l.Label(), string(l.Kind), l.Protocol}
}

// TunnelUp starts the series of the tunnel l.
func (m *Metrics) TunnelUp(l registry.Listener) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.tunnel(l.ID, l).name = l.Label()
	m.mu.Unlock()
}

// TunnelDown drops a closed tunnel's series. Its streams have ended (a
// listener's Close waits for them), and tunnel IDs are never reused, so no
// counter goes backwards.
func (m *Metrics) TunnelDown(l registry.Listener) {
	if m == nil {
		return
	}
	m.peerDown.DeletePartialMatch(prometheus.Labels{"tunnel": strconv.FormatUint(l.ID, 10)})
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byID, l.ID)
	for k := range m.closed {
		if k.tunnel == l.ID {
			delete(m.closed, k)
		}
	}
}

// ForwardPeerDown counts peer p of the forward l going down. It takes no
// lock of m's: the forward tells it under a lock that a scrape takes
// after m's (listing the tunnels' peers).
func (m *Metrics) ForwardPeerDown(l registry.Listener, p string) {
	if m == nil {
		return
	}
	m.peerDown.WithLabelValues(append(labels(l), p)...).Inc()
}

// StreamOpened counts the stream s and its setup time.
func (m *Metrics) StreamOpened(s registry.StreamInfo) {
	if m == nil {
		return
	}
	m.setup.WithLabelValues(string(s.Kind)).Observe(s.Setup.Seconds())
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tunnel(s.ListenerID, streamTunnel(s)).opened++
	m.live[s.ID] = &liveStream{key: streamKey{s.ListenerID, s.Peer}, in: s.BytesIn, out: s.BytesOut}
}

// StreamClosed adds the bytes of s, which ended with err, to its
// tunnel's and peer's totals, and counts err unless it is nil or
// streams.ErrAborted.
func (m *Metrics) StreamClosed(s registry.StreamInfo, err error) {
	if m == nil {
		return
	}
	if cause := endCause(err); cause != "eof" && cause != "closed" {
		m.errors.WithLabelValues(cause).Inc()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	in, out := s.BytesIn, s.BytesOut
	key := streamKey{s.ListenerID, s.Peer}
	if ls := m.live[s.ID]; ls != nil {
		in, out = max(in, ls.in), max(out, ls.out)
		delete(m.live, s.ID)
	}
	m.tunnel(s.ListenerID, streamTunnel(s))
	c := m.closed[key]
	if c == nil {
		c = new([2]int64)
		m.closed[key] = c
	}
	c[0] += in
	c[1] += out
}

// StreamFailed counts a connection that never became a stream.
func (m *Metrics) StreamFailed(f registry.Failure) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(f.Cause).Inc()
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBytesIn, descBytesOut, descStreamsOpen, descStreamsTotal, descTunnelsUp, descPeers, descForwardPeerUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It holds m.mu throughout, so a
// stream is counted either live or closed, never both nor neither.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.list() {
		if ls := m.live[s.ID]; ls != nil {
			ls.in, ls.out = max(ls.in, s.BytesIn), max(ls.out, s.BytesOut)
		}
	}
	bytes := make(map[streamKey][2]int64, len(m.closed)+len(m.live))
	for k, c := range m.closed {
		bytes[k] = *c
	}
	open := make(map[uint64]int)
	for _, ls := range m.live {
		b := bytes[ls.key]
		b[0] += ls.in
		b[1] += ls.out
		bytes[ls.key] = b
		open[ls.key.tunnel]++
	}
	for k, b := range bytes {
		t := m.byID[k.tunnel]
		if t == nil {
			continue
		}
		lv := []string{strconv.FormatUint(k.tunnel, 10), t.name, t.kind, t.protocol, k.peer}
		ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(b[0]), lv...)
		ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(b[1]), lv...)
	}
	for id, t := range m.byID {
		lv := []string{strconv.FormatUint(id, 10), t.name, t.kind, t.protocol}
		ch <- prometheus.MustNewConstMetric(descStreamsOpen, prometheus.GaugeValue, float64(open[id]), lv...)
		ch <- prometheus.MustNewConstMetric(descStreamsTotal, prometheus.CounterValue, float64(t.opened), lv...)
	}
	up := map[registry.Kind]int{registry.KindListen: 0, registry.KindForward: 0}
	for _, l := range m.tunnels() {
		up[l.Kind]++
		for _, p := range l.Peers {
			v := 0.0
			if p.Up {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descForwardPeerUp, prometheus.GaugeValue, v, append(labels(l), p.Peer)...)
		}
	}
	for k, v := range up {
		ch <- prometheus.MustNewConstMetric(descTunnelsUp, prometheus.GaugeValue, float64(v), string(k))
	}
	ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(m.peers()))
}
