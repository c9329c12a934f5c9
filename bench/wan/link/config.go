//go:build linux

package link

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalid is the error of a Config that New refuses; its text says
// which parameter and what it takes.
var ErrInvalid = errors.New("invalid link parameter")

// Config is one link: the same in both directions, except the loss
// draws, which each direction makes from its own stream.
type Config struct {
	// RTT is the round trip the link adds: each direction delays every
	// packet by RTT/2. Zero: no delay. At most MaxRTT.
	RTT time.Duration
	// Rate is each direction's rate in bits a second. Zero: unlimited.
	Rate int64
	// Queue is each direction's drop-tail queue in bytes: a packet that
	// would wait behind more than Queue bytes is dropped. Zero: one
	// bandwidth-delay product (Rate × RTT), at least 64 KiB. Used only
	// with a Rate.
	Queue int64
	// Loss is the probability that a packet is dropped, drawn for every
	// packet that enters a direction, in [0, 1).
	Loss float64
	// Seed seeds the loss draws: the same seed drops the same packets of
	// the same sequence.
	Seed uint64
	// MTU is both devices' MTU. Zero: 1500.
	MTU int
	// TCPCongestion is the TCP congestion control of both namespaces
	// (net.ipv4.tcp_congestion_control: "cubic", "bbr", "reno"). Empty:
	// what the kernel gives a new namespace (its initial namespace's).
	TCPCongestion string
}

// MaxRTT is the longest round trip a link takes.
const MaxRTT = 10 * time.Second

// minQueue is the smallest default queue.
const minQueue = 64 << 10

// withDefaults is c with its zero values filled in; it assumes c is valid.
func (c Config) withDefaults() Config {
	if c.MTU == 0 {
		c.MTU = 1500
	}
	if c.Rate > 0 && c.Queue == 0 {
		c.Queue = max(minQueue, int64(float64(c.Rate)/8*c.RTT.Seconds()))
	}
	return c
}

// Validate says, in one line, what is wrong with c, if anything.
func (c Config) Validate() error {
	switch {
	case c.RTT < 0 || c.RTT > MaxRTT:
		return fmt.Errorf("%w: rtt %v: want 0 to %v, e.g. 100ms", ErrInvalid, c.RTT, MaxRTT)
	case c.Rate < 0:
		return fmt.Errorf("%w: rate %d: want bits a second (0 for unlimited), e.g. 100000000", ErrInvalid, c.Rate)
	case c.Queue < 0:
		return fmt.Errorf("%w: queue %d: want bytes (0 for one bandwidth-delay product)", ErrInvalid, c.Queue)
	case c.Queue > 0 && c.Queue < int64(max(c.MTU, 1500)):
		return fmt.Errorf("%w: queue %d: want at least one packet (the MTU, %d bytes)", ErrInvalid, c.Queue, max(c.MTU, 1500))
	case !(c.Loss >= 0 && c.Loss < 1): // also NaN
		return fmt.Errorf("%w: loss %v: want a probability in [0, 1), e.g. 0.005 for 0.5 %%", ErrInvalid, c.Loss)
	case strings.Trim(c.TCPCongestion, "abcdefghijklmnopqrstuvwxyz0123456789_") != "":
		return fmt.Errorf("%w: tcp congestion control %q: want a name such as cubic or bbr", ErrInvalid, c.TCPCongestion)
	case c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535):
		return fmt.Errorf("%w: mtu %d: want 576 to 65535 (0 for 1500)", ErrInvalid, c.MTU)
	}
	return nil
}

// String is c as the benchmark's rows name it: "100ms 1Gbit/s 0.5% loss".
func (c Config) String() string {
	s := fmt.Sprintf("%v ", c.RTT)
	switch {
	case c.Rate == 0:
		s += "unlimited"
	case c.Rate%1e9 == 0:
		s += fmt.Sprintf("%dGbit/s", c.Rate/1e9)
	default:
		s += fmt.Sprintf("%gMbit/s", float64(c.Rate)/1e6)
	}
	return s + fmt.Sprintf(" %g%% loss", c.Loss*100)
}
