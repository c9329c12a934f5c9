// Package link emulates a WAN link on one Linux machine, for the WAN benchmark
// and its tests: two network namespaces it creates, each with a TUN device
// (10.99.0.1/24 in A, 10.99.0.2/24 in B), joined by this process, which
// reads each packet from one TUN and writes it to the other after a
// one-way delay (half the round trip), at a rate limit (serialisation
// delay behind a drop-tail queue of bounded size) and with random loss
// (seeded, per direction).
//
// It exists because the kernel it runs on has no netem. It touches no
// interface of the namespace it is started from: the TUN devices are
// created inside the new namespaces, which Close removes with everything
// in them (and New removes the ones a killed run left behind).
//
// It owns the namespaces, the devices and the goroutines that move the
// packets; what runs inside the namespaces (sockets opened through an
// End, processes started through End.Start) belongs to the caller, who
// stops it before Close.
package link
