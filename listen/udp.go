package listen

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/streams"
)

// A UDP target (…/udp/PORT) makes the listener the far side of a UDP
// tunnel: each stream is one flow, a client of the forward's, and gets
// its own socket connected to the target, so that the target's replies
// come back to that socket and go to that client. The stream carries the
// flow's datagrams framed (streams.Flow); the tunnel's lifecycle, its
// allowlist, rate, records and hooks are the same as TCP's.

// udpFlow returns the flow of stream s over c, its connected socket to
// the target, and the stream to bridge it with (s, reset with the
// TargetDial code once the target has refused a datagram); who is the
// calling peer, for the logs.
func (l *Listener) udpFlow(c *net.UDPConn, s network.Stream, who string) (*streams.Flow, network.Stream) {
	us := &udpStream{Stream: s}
	return streams.NewFlow(&udpTarget{UDPConn: c, l: l, s: us, who: who}, l.cfg.Datagrams), us
}

// udpStream is a UDP flow's stream. When the flow ends because the
// target refused a datagram, the bridge's reset carries the TargetDial
// code. The reset is the bridge's, after it has recorded the target's
// error: were the flow to reset the stream itself, the other direction's
// read could report that local reset first, and this side would record
// the flow's end as "reset" rather than target_dial.
type udpStream struct {
	network.Stream
	refused atomic.Bool
}

func (s *udpStream) Reset() error {
	if s.refused.Load() {
		return refusal.Reset(s.Stream, refusal.TargetDial)
	}
	return s.Stream.Reset()
}

// udpTarget is a connected socket to the target. When the target is
// down, the kernel reports the ICMP port unreachable of a datagram sent
// to it as ECONNREFUSED on the socket's next read or write: the flow then
// ends, and its stream is reset with the TargetDial code, so that the
// forward side records why.
type udpTarget struct {
	*net.UDPConn
	l   *Listener
	s   *udpStream
	who string
}

var _ streams.PacketConn = (*udpTarget)(nil)

func (u *udpTarget) Read(p []byte) (int, error) {
	n, err := u.UDPConn.Read(p)
	return n, u.refused(err)
}

func (u *udpTarget) Write(p []byte) (int, error) {
	n, err := u.UDPConn.Write(p)
	return n, u.refused(err)
}

// refused marks the stream to be reset with the TargetDial code when err
// says the target refused a datagram, and returns err with its context,
// as the local record of that refusal (refusal.Local), so that this
// side's events and metrics give the cause the forward side reads
// (target_dial), not "reset". The bridge, ending on that error, resets
// the stream.
func (u *udpTarget) refused(err error) error {
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		return err
	}
	u.l.cfg.Limited.Warn("udp target "+string(u.l.cfg.Protocol),
		"UDP target refused a datagram (ICMP port unreachable: is the service behind the tunnel running?); flow ended, stream reset",
		"proto", string(u.l.cfg.Protocol), "target", u.l.addr, "peer", u.who)
	u.s.refused.Store(true)
	return refusal.Local(refusal.TargetDial, fmt.Errorf("udp target %s: %w", u.l.addr, err))
}
