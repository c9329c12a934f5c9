//go:build linux

package link

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A Link is two namespaces joined by an emulated link. New starts it,
// Close removes it.
type Link struct {
	// A and B are the two ends: 10.99.0.1 and 10.99.0.2.
	A, B End

	cfg    Config
	closed chan struct{} // closed by Close: the Ends' starters stop
	tuns   []*os.File
	dirs   [2]*direction
	wg     sync.WaitGroup
	once   sync.Once
}

// The two directions, indexes of Stats.
const (
	AtoB = 0
	BtoA = 1
)

// Stats counts one direction's packets.
type Stats struct {
	// In is every packet read from the sending side's device.
	In int64
	// Lost is those the loss draw dropped; Dropped those the full queue
	// dropped; Delivered those written to the other device.
	Lost, Dropped, Delivered int64
	// DeliveredBytes is the IP bytes of the delivered packets.
	DeliveredBytes int64
}

// New makes the namespaces and devices and starts moving packets. On an
// error it leaves nothing behind.
func New(cfg Config) (_ *Link, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := Available(); err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	cfg = cfg.withDefaults()
	removeStale()
	a, b := newNSNames()
	closed := make(chan struct{})
	l := &Link{cfg: cfg, closed: closed,
		A: End{NS: a, Addr: net.IPv4(10, 99, 0, 1), starts: make(chan startReq), closed: closed},
		B: End{NS: b, Addr: net.IPv4(10, 99, 0, 2), starts: make(chan startReq), closed: closed}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	for _, e := range []End{l.A, l.B} {
		if err := ip("netns", "add", e.NS); err != nil {
			return nil, err
		}
		if err := setupNS(e, cfg.TCPCongestion); err != nil {
			return nil, err
		}
		tun, err := openTUN(e, cfg.MTU)
		if err != nil {
			return nil, err
		}
		l.tuns = append(l.tuns, tun)
		l.wg.Go(func() { e.serveStarts() })
	}
	for i := range l.dirs {
		from, to := l.tuns[i], l.tuns[1-i]
		d := newDirection(cfg, uint64(i), to)
		l.dirs[i] = d
		l.wg.Go(func() { d.read(from) })
		l.wg.Go(d.write)
	}
	return l, nil
}

// Config is the link's configuration, with its defaults filled in.
func (l *Link) Config() Config { return l.cfg }

// Stats is direction dir's counts (AtoB or BtoA).
func (l *Link) Stats(dir int) Stats {
	d := l.dirs[dir]
	if d == nil {
		return Stats{}
	}
	return Stats{In: d.in.Load(), Lost: d.lost.Load(), Dropped: d.dropped.Load(),
		Delivered: d.delivered.Load(), DeliveredBytes: d.deliveredBytes.Load()}
}

// Close stops moving packets, then deletes both namespaces and their
// devices; the processes started through the Ends are killed. Whatever
// the caller runs in them should have stopped first. It returns once all
// of it is gone; it is idempotent.
func (l *Link) Close() error {
	var errs []error
	l.once.Do(func() {
		close(l.closed) // the starters' threads exit: what they started is killed
		for _, t := range l.tuns {
			t.Close() // ends the readers, which end the writers
		}
		l.wg.Wait()
		for _, e := range []End{l.A, l.B} {
			if _, err := os.Stat(netnsDir + "/" + e.NS); err == nil {
				errs = append(errs, ip("netns", "del", e.NS))
			}
		}
	})
	return errors.Join(errs...)
}

// A packet waits in a direction until its time comes.
type packet struct {
	buf *[]byte   // from the direction's pool, MTU bytes
	n   int       // the packet's length in buf
	at  time.Time // when it may be written
}

// maxInFlight bounds the packets a direction holds (in its queue and on
// the wire); beyond it a packet is dropped like one the queue drops. It
// is far above what the rate and queue allow at 1 Gbit/s × 10 s.
const maxInFlight = 1 << 17

// A direction moves packets one way: read stamps each with its time,
// write writes it to the other device once that time has come.
type direction struct {
	cfg    Config
	loss   *rand.Rand
	to     *os.File
	q      chan packet
	pool   sync.Pool
	oneWay time.Duration
	next   time.Time // when the link's serialiser is next free

	in, lost, dropped, delivered, deliveredBytes atomic.Int64
}

func newDirection(cfg Config, dir uint64, to *os.File) *direction {
	d := &direction{cfg: cfg, loss: lossStream(cfg.Seed, dir), to: to,
		q: make(chan packet, maxInFlight), oneWay: cfg.RTT / 2}
	d.pool.New = func() any {
		b := make([]byte, cfg.MTU)
		return &b
	}
	return d
}

// lossStream is the loss draws of direction dir: one Float64 a packet.
func lossStream(seed, dir uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, dir))
}

// read reads packets from the device until it is closed, then closes the
// queue.
func (d *direction) read(from *os.File) {
	defer close(d.q)
	for {
		buf := d.pool.Get().(*[]byte)
		n, err := from.Read(*buf)
		if err != nil {
			return
		}
		if at, ok := d.admit(n, time.Now()); ok {
			select {
			case d.q <- packet{buf, n, at}:
				continue
			default:
				d.dropped.Add(1)
			}
		}
		d.pool.Put(buf)
	}
}

// admit decides the fate of an n-byte packet read at now: lost, dropped
// by the full queue, or delivered at the time it returns.
func (d *direction) admit(n int, now time.Time) (time.Time, bool) {
	d.in.Add(1)
	if d.cfg.Loss > 0 && d.loss.Float64() < d.cfg.Loss {
		d.lost.Add(1)
		return time.Time{}, false
	}
	sent := now
	if d.cfg.Rate > 0 {
		if d.next.Before(now) {
			d.next = now
		}
		// The bytes ahead of this packet, still to be serialised.
		backlog := int64(d.next.Sub(now).Seconds() * float64(d.cfg.Rate) / 8)
		if backlog+int64(n) > d.cfg.Queue {
			d.dropped.Add(1)
			return time.Time{}, false
		}
		d.next = d.next.Add(time.Duration(float64(n) * 8 / float64(d.cfg.Rate) * 1e9))
		sent = d.next
	}
	return sent.Add(d.oneWay), true
}

// write writes each packet once its time has come, in order (their times
// only grow), until the queue is closed. A packet is never written early.
func (d *direction) write() {
	t := time.NewTimer(0)
	defer t.Stop()
	for p := range d.q {
		if wait := time.Until(p.at); wait > 0 {
			t.Reset(wait)
			<-t.C
		}
		if _, err := d.to.Write((*p.buf)[:p.n]); err == nil {
			d.delivered.Add(1)
			d.deliveredBytes.Add(int64(p.n))
		}
		d.pool.Put(p.buf)
	}
}
