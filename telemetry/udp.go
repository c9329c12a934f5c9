package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2ptun/p2ptun/streams"
)

// newDatagramDrops returns p2ptun_udp_datagrams_dropped_total, with a
// series for every reason from the start.
func newDatagramDrops() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2ptun_udp_datagrams_dropped_total",
		Help: "UDP datagrams a UDP tunnel dropped rather than split or queue, by reason: too_large (over the framing's 65,535 bytes or the flow's maximum), truncated (a frame cut short when its stream ended), queue_full (a client sent faster than its flow's stream carried).",
	}, []string{"reason"})
	for _, r := range streams.DropReasons() {
		c.WithLabelValues(r)
	}
	return c
}

// DatagramDropped counts a datagram a UDP tunnel dropped, for reason (one
// of streams.DropReasons). A nil *Metrics ignores it.
func (m *Metrics) DatagramDropped(reason string) {
	if m == nil {
		return
	}
	m.drops.WithLabelValues(reason).Inc()
}
