package p2phost

import (
	"cmp"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
)

// holePunchOptions tells Config.HolePunch how each hole punch ends,
// keeping go-libp2p's hole-punching metrics when metrics are on (an event
// tracer alone would replace their tracer).
func (h *Host) holePunchOptions() []holepunch.Option {
	if h.cfg.HolePunch == nil {
		return nil
	}
	et := holePunchTracer(h.cfg.HolePunch)
	if h.cfg.Metrics != nil {
		mt := holepunch.NewMetricsTracer(holepunch.WithRegisterer(h.cfg.Metrics))
		return []holepunch.Option{holepunch.WithMetricsAndEventTracer(mt, et)}
	}
	return []holepunch.Option{holepunch.WithTracer(et)}
}

// holePunchTracer passes the end of each hole-punch attempt on.
type holePunchTracer func(remote peer.ID, took time.Duration, err error)

func (f holePunchTracer) Trace(ev *holepunch.Event) {
	end, ok := ev.Evt.(*holepunch.EndHolePunchEvt)
	if !ok {
		return
	}
	var err error
	if !end.Success {
		err = errors.New(cmp.Or(end.Error, "hole punch failed"))
	}
	f(ev.Remote, end.EllapsedTime, err)
}
