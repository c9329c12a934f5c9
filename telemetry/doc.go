// Package telemetry owns what a node reports about its tunnels: the
// lifecycle events (Event, and the Bus that fans them out to
// subscribers without ever blocking the emitter) and p2ptun's Prometheus
// metrics (Metrics, a collector fed from the registries' hooks).
//
// It builds events and counts from registry records, through the
// registries' hooks it makes (Hooks), peer events from a subscription to
// the host's connectedness changes (WatchPeers), and the host's relay and
// hole-punching callbacks; it does not set the hooks, subscribe to the
// host, or serve anything: the node feeds it, and the daemon serves the
// metrics and the API the events.
package telemetry
