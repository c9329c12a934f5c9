// Package oneline turns an error's text into one line, so that every
// error p2ptun logs or reports (an event's error, a CLI message, a log
// attribute) fits on one: libp2p's dial errors list their causes one per
// line ("all dials failed\n  * [addr] cause").
//
// It formats text only: it never wraps, classifies or matches errors. It
// imports nothing of ours, so every layer, down to spec and ticket, can use
// it.
package oneline
