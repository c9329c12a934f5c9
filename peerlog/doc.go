// Package peerlog owns throttled logging of per-peer events: a peer that is
// refused or limited is logged at most once per interval per kind of event,
// with a count of the events suppressed since, so a hostile peer cannot
// flood the log.
package peerlog
