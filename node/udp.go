package node

import "github.com/p2ptun/p2ptun/streams"

// datagrams is how the node's UDP tunnels (a /udp/ target or listen
// address) frame their flows: they end after timeouts.udp_flow_idle, and
// the datagrams they drop are counted in
// p2ptun_udp_datagrams_dropped_total.
func (n *Node) datagrams() streams.FlowConfig {
	return streams.FlowConfig{Idle: n.opts.Timeouts.UDPFlowIdle.Std(), Dropped: n.metrics.DatagramDropped}
}
